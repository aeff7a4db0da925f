//! The blob port on a folder of files. Writes go to a temporary file and are renamed into
//! place, so a reader sees a whole object or none.
//!
//! A multipart upload appends its parts, in order (a part sent again replaces it and those
//! after it), to one file and keeps a list of the parts beside it, each with its size and a
//! fresh ETag; completing it checks the parts listed against that list (as S3 does, so a part
//! replaced since its receipt was given fails the upload) and S3's size rule, and renames the
//! file into place, so finishing a large upload costs no copy.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use stowage_storage::{
    BlobError, BlobRead, BlobStore, ByteRange, CompletedPart, MIN_MULTIPART_PART, ObjectPage,
    PresignOptions, StoredObject, UnfinishedPage, UnfinishedUpload,
};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::UrlSigner;

const READ_BUFFER: usize = 256 * 1024;

pub struct FileBlobStore {
    root: PathBuf,
    signer: UrlSigner,
}

impl FileBlobStore {
    /// Blobs live under `root`; `signer` makes the URLs that `presign_get` returns.
    pub fn open(root: &Path, signer: UrlSigner) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join(".tmp"))?;
        std::fs::create_dir_all(root.join(".multipart"))?;
        sweep_stale_temporaries(&root.join(".tmp"))?;
        Ok(Self {
            root: root.to_owned(),
            signer,
        })
    }

    /// The file of a key. Keys are checked so that none can leave the root.
    fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        let valid = !key.is_empty()
            && key.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && !segment.starts_with(".tmp")
                    && !segment.starts_with(".multipart")
                    && !segment.contains('\\')
                    && !segment.contains('\0')
            });
        if valid {
            Ok(self.root.join(key))
        } else {
            Err(BlobError::Backend {
                message: format!("invalid blob key {key:?}"),
                source: None,
            })
        }
    }

    fn temp_path(&self) -> PathBuf {
        self.root
            .join(".tmp")
            .join(uuid::Uuid::new_v4().to_string())
    }

    fn multipart_paths(&self, upload_id: &str) -> Result<(PathBuf, PathBuf), BlobError> {
        if uuid::Uuid::parse_str(upload_id).is_err() {
            return Err(BlobError::InvalidMultipart(format!(
                "unknown upload {upload_id:?}"
            )));
        }
        let dir = self.root.join(".multipart");
        Ok((
            dir.join(format!("{upload_id}.data")),
            dir.join(format!("{upload_id}.parts")),
        ))
    }

    /// Where a multipart upload's key is noted, so that an unfinished one can be listed.
    fn multipart_key_path(&self, upload_id: &str) -> PathBuf {
        self.root
            .join(".multipart")
            .join(format!("{upload_id}.key"))
    }

    async fn move_into_place(&self, from: &Path, key: &str) -> Result<(), BlobError> {
        let target = self.path_of(key)?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .await
                .map_err(io("create folder"))?;
        }
        fs::rename(from, &target)
            .await
            .map_err(io("rename into place"))
    }
}

/// No write takes this long: a temporary file older is the leftover of a process that died
/// while writing it.
const STALE_TEMPORARY: Duration = Duration::from_secs(24 * 3600);

/// Removes temporary files left by writes that never finished.
fn sweep_stale_temporaries(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let age = entry
            .metadata()?
            .modified()?
            .elapsed()
            .unwrap_or(Duration::ZERO);
        if age > STALE_TEMPORARY {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> BlobError {
    move |error| match error.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            BlobError::StorageFull
        }
        _ => BlobError::backend(format!("files: {what}"), error),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// Cuts the file at `offset` and writes `bytes` there, durably.
fn write_at(path: &Path, offset: u64, bytes: &[u8]) -> Result<(), BlobError> {
    use std::io::{Seek, Write};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io("open upload"))?;
    file.set_len(offset).map_err(io("truncate upload"))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(io("seek upload"))?;
    file.write_all(bytes).map_err(io("write part"))?;
    file.sync_data().map_err(io("sync part"))
}

/// A stored part: its size and the ETag its receipt carries.
type StoredPart = (u64, String);

async fn read_parts(path: &Path) -> Result<Vec<StoredPart>, BlobError> {
    let text = match fs::read_to_string(path).await {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(BlobError::InvalidMultipart("unknown upload".into()));
        }
        Err(error) => return Err(io("read part list")(error)),
    };
    Ok(text
        .lines()
        .filter_map(|line| {
            let (size, etag) = line.split_once(' ')?;
            Some((size.parse().ok()?, etag.to_owned()))
        })
        .collect())
}

async fn write_parts(path: &Path, parts: &[StoredPart]) -> Result<(), BlobError> {
    let text: String = parts
        .iter()
        .map(|(size, etag)| format!("{size} {etag}\n"))
        .collect();
    fs::write(path, text).await.map_err(io("write part list"))
}

#[async_trait]
impl BlobStore for FileBlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        self.path_of(key)?;
        let temp = self.temp_path();
        let written = async {
            let mut file = fs::File::create(&temp).await.map_err(io("create"))?;
            file.write_all(&body).await.map_err(io("write"))?;
            file.sync_data().await.map_err(io("sync"))?;
            drop(file);
            self.move_into_place(&temp, key).await
        }
        .await;
        if written.is_err() {
            // A full disk, say: what was written of it goes.
            drop(fs::remove_file(&temp).await);
        }
        written
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<BlobRead, BlobError> {
        let path = self.path_of(key)?;
        let mut file = match fs::File::open(&path).await {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound);
            }
            Err(error) => return Err(io("open")(error)),
        };
        let total_size = file.metadata().await.map_err(io("stat"))?.len();
        let (start, end) = match range {
            None => (0, total_size.saturating_sub(1)),
            Some(range) => {
                if range.start >= total_size {
                    return Err(BlobError::InvalidRange { size: total_size });
                }
                let end = range
                    .end
                    .map_or(total_size - 1, |end| end.min(total_size - 1));
                if end < range.start {
                    return Err(BlobError::InvalidRange { size: total_size });
                }
                (range.start, end)
            }
        };
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(io("seek"))?;
        let length = if total_size == 0 { 0 } else { end - start + 1 };
        let body = tokio_util::io::ReaderStream::with_capacity(file.take(length), READ_BUFFER);
        Ok(BlobRead {
            total_size,
            start,
            end,
            body: Box::pin(body),
        })
    }

    async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match fs::metadata(self.path_of(key)?).await {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io("stat")(error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match fs::remove_file(self.path_of(key)?).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io("delete")(error)),
        }
    }

    async fn presign_get(&self, key: &str, options: &PresignOptions) -> Result<String, BlobError> {
        self.path_of(key)?;
        Ok(self.signer.sign(key, options, now_unix()))
    }

    async fn start_multipart(&self, key: &str) -> Result<String, BlobError> {
        self.path_of(key)?;
        let upload_id = uuid::Uuid::new_v4().to_string();
        let (data, parts) = self.multipart_paths(&upload_id)?;
        // The key first: whatever happens after, the upload can be found and aborted.
        fs::write(self.multipart_key_path(&upload_id), key)
            .await
            .map_err(io("note upload"))?;
        fs::File::create(&data).await.map_err(io("create upload"))?;
        write_parts(&parts, &[]).await?;
        Ok(upload_id)
    }

    async fn put_part(
        &self,
        _key: &str,
        upload_id: &str,
        number: u32,
        body: Bytes,
    ) -> Result<CompletedPart, BlobError> {
        let (data, parts) = self.multipart_paths(upload_id)?;
        let mut stored = read_parts(&parts).await?;
        let number_index = number as usize;
        // The next part, or an earlier one again: a retry replaces it and drops those after it,
        // as a resumed upload rewrites from there.
        if number_index == 0 || number_index > stored.len() + 1 {
            return Err(BlobError::InvalidMultipart(format!(
                "part {number} arrived after {} parts; parts go in order",
                stored.len()
            )));
        }
        stored.truncate(number_index - 1);
        let offset: u64 = stored.iter().map(|(size, _)| size).sum();
        let length = body.len() as u64;
        // One blocking call writes the part straight from its buffer: tokio's file would copy
        // it again, in 2 MiB steps, each a trip to the blocking pool.
        tokio::task::spawn_blocking(move || write_at(&data, offset, &body))
            .await
            .map_err(|join| BlobError::backend("files: part write stopped", join))??;
        let etag = uuid::Uuid::new_v4().simple().to_string();
        stored.push((length, etag.clone()));
        write_parts(&parts, &stored).await?;
        Ok(CompletedPart {
            number,
            etag,
            size: length,
        })
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<(), BlobError> {
        let (data, parts_path) = self.multipart_paths(upload_id)?;
        let stored = read_parts(&parts_path).await?;
        let listed: Vec<StoredPart> = parts
            .iter()
            .map(|part| (part.size, part.etag.clone()))
            .collect();
        let numbered_in_order = parts
            .iter()
            .enumerate()
            .all(|(i, part)| part.number as usize == i + 1);
        // As on S3, parts uploaded but not listed are left out: here they can only be the last
        // ones (the parts are one file), which a refused chunk may have left.
        if parts.is_empty() || !stored.starts_with(&listed) || !numbered_in_order {
            return Err(BlobError::InvalidMultipart(
                "the parts listed are not the parts uploaded".into(),
            ));
        }
        if listed[..listed.len() - 1]
            .iter()
            .any(|&(size, _)| size < MIN_MULTIPART_PART)
        {
            return Err(BlobError::InvalidMultipart(format!(
                "every part but the last must be at least {MIN_MULTIPART_PART} bytes"
            )));
        }
        if listed.len() < stored.len() {
            let length: u64 = listed.iter().map(|(size, _)| size).sum();
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&data)
                .map_err(io("open upload"))?;
            file.set_len(length).map_err(io("drop unlisted parts"))?;
        }
        self.move_into_place(&data, key).await?;
        remove_if_present(&parts_path).await?;
        remove_if_present(&self.multipart_key_path(upload_id)).await
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> Result<(), BlobError> {
        let (data, parts) = self.multipart_paths(upload_id)?;
        for path in [data, parts, self.multipart_key_path(upload_id)] {
            remove_if_present(&path).await?;
        }
        Ok(())
    }

    async fn list_objects(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<ObjectPage, BlobError> {
        // Every file under the prefix's folder, sorted: a walk per page, which is fine for
        // what the purge asks of a local store.
        let folder = match prefix.rfind('/') {
            Some(end) => self.path_of(&prefix[..end])?,
            None => self.root.clone(),
        };
        let root = self.root.clone();
        let mut keys = tokio::task::spawn_blocking(move || walk(&root, &folder))
            .await
            .map_err(|join| BlobError::backend("files: walk stopped", join))?
            .map_err(io("list objects"))?;
        keys.retain(|(key, _)| key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a));
        keys.sort();
        let more = keys.len() > limit.max(1);
        keys.truncate(limit.max(1));
        let objects: Vec<StoredObject> = keys
            .into_iter()
            .map(|(key, size)| StoredObject { key, size })
            .collect();
        let next = more
            .then(|| objects.last().map(|o| o.key.clone()))
            .flatten();
        Ok(ObjectPage { objects, next })
    }

    async fn list_unfinished(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<UnfinishedPage, BlobError> {
        let mut ids = Vec::new();
        let mut entries = fs::read_dir(self.root.join(".multipart"))
            .await
            .map_err(io("list uploads"))?;
        while let Some(entry) = entries.next_entry().await.map_err(io("list uploads"))? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".data")
                && after.is_none_or(|after| id > after)
            {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        let mut page = UnfinishedPage::default();
        for id in ids {
            if page.uploads.len() == limit.max(1) {
                page.next = page.uploads.last().map(|u| u.upload_id.clone());
                break;
            }
            let Some(upload) = self.unfinished(&id).await? else {
                continue;
            };
            if upload.key.is_empty() || upload.key.starts_with(prefix) {
                page.uploads.push(upload);
            }
        }
        Ok(page)
    }
}

impl FileBlobStore {
    /// An unfinished upload, as its files tell it; `None` if it ended meanwhile. An upload
    /// begun before keys were noted has an empty key.
    async fn unfinished(&self, upload_id: &str) -> Result<Option<UnfinishedUpload>, BlobError> {
        let (data, _) = self.multipart_paths(upload_id)?;
        let noted = self.multipart_key_path(upload_id);
        let (key, since) = match fs::read_to_string(&noted).await {
            Ok(key) => (key, fs::metadata(&noted).await),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                (String::new(), fs::metadata(&data).await)
            }
            Err(error) => return Err(io("read upload")(error)),
        };
        match since.and_then(|metadata| metadata.modified()) {
            Ok(started_at) => Ok(Some(UnfinishedUpload {
                key,
                upload_id: upload_id.to_owned(),
                started_at,
            })),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io("read upload")(error)),
        }
    }
}

/// The keys and sizes of the objects under `folder`, a folder of the store at `root`
/// (nothing when it does not exist; the store's own working folders are not objects).
fn walk(root: &Path, folder: &Path) -> std::io::Result<Vec<(String, u64)>> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let metadata = entry.metadata()?;
            if metadata.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(root) {
                let key = relative
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push((key, metadata.len()));
            }
        }
    }
    Ok(found)
}

async fn remove_if_present(path: &Path) -> Result<(), BlobError> {
    match fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(io("remove")(error)),
    }
}
