import cf from 'cloudfront';

// The front of a deployment with an upload service: CloudFront runs this on every request
// and sends those that carry large bodies, and the fetches from upstreams that a Lambda hands
// over, to the upload service (ECS, no limit on size or time), everything else to the HTTP
// API (Lambda, 6 MB a request). It is the one statement of that
// rule: `stowage-local --emulate-aws` reads the table below from this file, and
// front/viewer-request.test.mjs checks it against requests recorded from real clients.
//
// Runtime: cloudfront-js-2.0. The origin ids are the distribution's (template.yaml).

// routes:begin
const UPLOAD_ROUTES = [
  { "methods": ["PATCH", "PUT"], "prefix": "/v2/", "contains": "/blobs/uploads/" },
  { "methods": ["GET", "HEAD"], "prefix": "/v2/", "contains": "/-/fetches/" },
  { "methods": ["GET", "HEAD"], "prefix": "/npm/", "contains": "/-/fetches/" },
  { "methods": ["GET", "HEAD"], "prefix": "/maven/", "contains": "/-/fetches/" },
  { "methods": ["PUT"], "prefix": "/npm/" },
  { "methods": ["PUT"], "prefix": "/maven/" }
];
// routes:end

const UPLOAD_ORIGIN = 'upload-service';

function goesToUploadService(method, uri) {
  return UPLOAD_ROUTES.some(function (route) {
    return route.methods.indexOf(method) !== -1
      && uri.startsWith(route.prefix)
      && (route.contains === undefined || uri.indexOf(route.contains, route.prefix.length - 1) !== -1);
  });
}

async function handler(event) {
  const request = event.request;
  // The origins see their own host name and scheme; the registry's URLs name the ones
  // clients used (RFC 7239).
  const host = request.headers.host ? request.headers.host.value : '';
  request.headers['forwarded'] = { value: 'host=' + host + ';proto=https' };
  if (goesToUploadService(request.method, request.uri)) {
    cf.selectRequestOriginById(UPLOAD_ORIGIN);
  }
  return request;
}
