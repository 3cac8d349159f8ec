// Baidu's official Node.js SDK against the baidu simulator: see
// check-baidu-sdk.sh. Exits non-zero when an answer is not what Baidu's
// documentation and the simulator promise.
const fs = require('fs');
const AipImageClassifyClient = require('baidu-aip-sdk').imageClassify;
const HttpClient = require('baidu-aip-sdk').HttpClient;

const sim = process.env.SIM_URL;
HttpClient.setRequestInterceptor(function (options) {
  options.url = options.url.replace('https://aip.baidubce.com', sim);
  return options;
});

// A fixture image when there is one, else a 16×16 PNG.
const image = process.env.IMAGE && fs.existsSync(process.env.IMAGE)
  ? fs.readFileSync(process.env.IMAGE).toString('base64')
  : 'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAFklEQVR4nGNgGAWjYBSMglEwCoYOAAAIEAABF8oa4wAAAABJRU5ErkJggg==';

function fail(msg, v) {
  console.error('FAIL: ' + msg + ': ' + JSON.stringify(v));
  process.exit(1);
}

async function main() {
  const client = new AipImageClassifyClient('10000001', process.env.CUTOVER_BAIDU_API_KEY, process.env.CUTOVER_BAIDU_SECRET_KEY);
  const res = await client.advancedGeneral(image, {baike_num: '0'});
  if (res.error_code || !res.log_id || res.result_num < 1 || res.result_num !== res.result.length) fail('advanced_general', res);
  for (const r of res.result) {
    if (!r.keyword || typeof r.score !== 'number' || r.score < 0 || r.score > 1) fail('result item', r);
  }
  console.log('advanced_general through the official SDK: ' + res.result_num + ' results, first ' +
    JSON.stringify(res.result[0]));
  // Several calls reuse the SDK's cached token.
  for (let i = 0; i < 3; i++) {
    const again = await client.advancedGeneral(image);
    if (again.error_code) fail('repeat call', again);
  }
  console.log('3 more calls on the cached token: ok');
  // A wrong Secret Key: the token endpoint refuses (invalid_client); the
  // SDK then falls back to bce-auth-v1 signing, which the simulator does
  // not implement: the call is refused with error_code 100 (no token).
  const bad = new AipImageClassifyClient('10000001', process.env.CUTOVER_BAIDU_API_KEY, 'wrong-secret');
  let refused;
  try {
    refused = await bad.advancedGeneral(image);
  } catch (e) {
    refused = e;
  }
  if (!refused || !refused.error_code) fail('a wrong Secret Key was not refused', refused);
  console.log('wrong Secret Key refused: ' + JSON.stringify(refused));
}

main().catch(function (e) { fail('exception', e && (e.stack || e)); });
