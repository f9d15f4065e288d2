// Plays a clip file with Debian's headless Chromium's own <video> element, no player library:
// what a browser does with a downloaded or linked MP4. Loads its metadata, seeks into the
// middle (the moov's sample tables at work), then plays it from the start to its 'ended' event
// at four times the speed. Prints one JSON line; exit 0 when the checks pass.
//   node clip.mjs FILE_URL
import { drive } from './chromium.mjs';

const url = process.argv[2];
const result = { url };

await drive(result, async browser => {
  const page = await browser.newPage();
  await page.goto(new URL('/', url).href).catch(() => {});
  const r = await page.evaluate(async src => {
    const v = document.createElement('video');
    v.muted = true;
    document.body.appendChild(v);
    const event = (name, ms) => new Promise((done, fail) => {
      const t = setTimeout(() => fail(new Error(`no '${name}' within ${ms} ms (error ${v.error && v.error.code})`)), ms);
      v.addEventListener(name, () => { clearTimeout(t); done(); }, { once: true });
      v.addEventListener('error', () => { clearTimeout(t); fail(new Error(`media error ${v.error && v.error.code}: ${v.error && v.error.message}`)); }, { once: true });
    });
    const out = {};
    const meta = event('loadedmetadata', 20000);
    v.src = src;
    await meta;
    out.duration = v.duration;
    out.width = v.videoWidth;
    const middle = v.duration / 2;
    const seeked = event('seeked', 20000);
    v.currentTime = middle;
    await seeked;
    out.seekedTo = v.currentTime;
    const frame = v.readyState >= 2 ? true : await event('loadeddata', 10000).then(() => true);
    out.frameAtSeek = frame;
    v.currentTime = 0;
    await event('seeked', 20000);
    v.playbackRate = 4;
    const ended = event('ended', (v.duration / 4 + 30) * 1000);
    await v.play();
    await ended;
    out.ended = true;
    out.endedAt = v.currentTime;
    return out;
  }, url);
  Object.assign(result, r);
  if (!(Math.abs(r.seekedTo - r.duration / 2) < 0.5)) throw new Error(`seeked to ${r.seekedTo} of ${r.duration}`);
});
