# Shared by tests/run and tests/bench/run (sourced, with `root` and `work` set).

step() { printf '\n==> %s\n' "$*"; }

# install_missing LOG PACKAGE=FILE...: installs the Debian packages whose FILE (one that shows
# the package is installed) is missing.
install_missing() {
  local log=$1 package missing=()
  shift
  for package in "$@"; do
    [ -e "${package#*=}" ] || missing+=("${package%%=*}")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  if [ "$(id -u)" != 0 ]; then
    echo "$0 needs root to install: ${missing[*]} (or install them first)"
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > "$log"
}

# start_moto LOG: moto (DynamoDB and S3) on a free loopback port, stopped when the script
# exits; exports the AWS environment that points the SDK at it.
start_moto() {
  local log=$1 port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$work/venv/bin/python" "$root/tests/moto_server.py" "$port" > "$log" 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/moto-api/" > /dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/moto-api/" > /dev/null || { cat "$log"; echo "moto did not start"; exit 1; }
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
  export AWS_EC2_METADATA_DISABLED=true
}

# The Lambda functions, as template.yaml deploys them.
lambda_functions=(stowage-admin stowage-oci stowage-npm stowage-maven stowage-purge stowage-web)

# build_lambdas: every function in release mode for arm64, zipped as `sam build` makes them,
# in target/lambda/<function>/bootstrap.zip.
build_lambdas() {
  PATH="$work/venv/bin:$PATH" cargo lambda build --release --arm64 --locked --output-format zip \
    "${lambda_functions[@]/#/--package=}"
}

# build_image ARCH (amd64 or arm64): the upload service's static (musl) binary, in
# target/image/ARCH/, and its container image from Containerfile, saved as
# target/image/stowage-ARCH.oci.tar.
build_image() {
  local arch=$1 triple
  case $arch in
    amd64) triple=x86_64-unknown-linux-musl ;;
    arm64) triple=aarch64-unknown-linux-musl ;;
  esac
  rustup target list --installed | grep -qx "$triple" || rustup target add "$triple"
  PATH="$work/venv/bin:$PATH" cargo lambda build --release --locked --target "$triple" \
    --package=stowage-local --lambda-dir "$root/target/image-build/$arch"
  mkdir -p "$root/target/image/$arch"
  cp "$root/target/image-build/$arch/stowage-local/bootstrap" "$root/target/image/$arch/stowage-local"
  cp /etc/ssl/certs/ca-certificates.crt "$root/target/image/ca-certificates.crt"
  local buildah=(buildah --storage-driver vfs --root "$work/buildah/root" --runroot "$work/buildah/run")
  "${buildah[@]}" bud --quiet --arch "$arch" --build-arg "TARGETARCH=$arch" \
    -f "$root/Containerfile" -t "localhost/stowage:$arch" "$root/target/image" > /dev/null
  rm -f "$root/target/image/stowage-$arch.oci.tar"
  "${buildah[@]}" push --quiet "localhost/stowage:$arch" "oci-archive:$root/target/image/stowage-$arch.oci.tar"
}

# zip_kib FUNCTION: the size of a built function's zip, in KiB.
zip_kib() {
  echo $(( $(stat -c %s "$root/target/lambda/$1/bootstrap.zip") / 1024 ))
}
