// Runs the CloudFront function (front/viewer-request.js) with node against the requests in
// front/recorded-requests.json, and checks the origin it picks for each and the host it
// forwards. CloudFront's `cloudfront` module is stood in for by a recorder of the origin the
// function selects. Usage: node front/viewer-request.test.mjs
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import assert from 'node:assert/strict';

const here = new URL('.', import.meta.url);
const source = readFileSync(new URL('viewer-request.js', here), 'utf8');
const recorded = JSON.parse(readFileSync(new URL('recorded-requests.json', here), 'utf8'));

assert.match(source, /^import cf from 'cloudfront';\n/, 'the first line imports the cloudfront module');
const script = source.replace("import cf from 'cloudfront';", '') + '\nhandler;';

let failures = 0;
for (const request of recorded) {
  let selected = 'api';
  const cf = { selectRequestOriginById: (id) => { selected = id; } };
  const handler = new vm.Script(script).runInNewContext({ cf });
  const event = {
    version: '1.0',
    context: { eventType: 'viewer-request' },
    viewer: { ip: '203.0.113.7' },
    request: {
      method: request.method,
      uri: request.uri,
      querystring: {},
      headers: { host: { value: 'registry.example.com' } },
      cookies: {},
    },
  };
  const forwarded = await handler(event);
  const problems = [];
  if (selected !== request.origin) problems.push(`went to ${selected}, not ${request.origin}`);
  if (forwarded.headers.forwarded?.value !== 'host=registry.example.com;proto=https') {
    problems.push('the viewer host and scheme were not forwarded');
  }
  if (problems.length > 0) {
    failures += 1;
    console.error(`${request.method} ${request.uri} (${request.client}): ${problems.join('; ')}`);
  }
}
console.log(`${recorded.length - failures} of ${recorded.length} recorded requests reach their origin`);
process.exit(failures === 0 ? 0 : 1);
