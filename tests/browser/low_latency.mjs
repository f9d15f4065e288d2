// Plays a low-latency hls-dvr stream in Debian's headless Chromium. Prints one JSON line; exit 0
// when the checks pass.
//   node low_latency.mjs hlsjs PAGE_URL [SEEK_BACK_SECONDS]
//       the player page (hls.js, low-latency mode): plays near the live edge loading parts, seeks
//       back into the DVR window and plays there, then returns to the live edge
//   node low_latency.mjs shaka MASTER_URL [SECONDS]
//       Shaka Player in low-latency mode: plays the live stream for SECONDS, loading parts
//   node low_latency.mjs latency PAGE_URL SECONDS
//       the player page as it is configured (?ll=0 turns low-latency mode off): latency sampled
//       every second for SECONDS, p50 and p95, and the stalls (scripts/bench)
// Latency is the player's wall clock minus the program date-time being shown, sampled every
// 500 ms: the figures are reported; the caller decides what they must be.
import { drive } from './chromium.mjs';
import { fileURLToPath } from 'node:url';

const [mode, target, arg] = process.argv.slice(2);
const partUri = /\/\d+\.\d+\.m4s(\?|$)/;
const result = { ok: false, mode };
const sleep = ms => new Promise(r => setTimeout(r, ms));
const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[s.length >> 1] : null; };

await drive(result, async browser => {
  const page = await browser.newPage();
  // Every part the player fetched, whatever the player.
  let partsFetched = 0;
  page.on('request', req => { if (partUri.test(req.url())) partsFetched++; });
  let state;
  if (mode === 'hlsjs' || mode === 'latency') {
    await page.goto(target);
    await page.evaluate(() => {
      const v = document.getElementById('video');
      const w = window.watch = { stalls: 0, stalledMs: 0, since: null, playing: false };
      v.addEventListener('waiting', () => {
        if (w.playing && w.since === null) { w.stalls++; w.since = performance.now(); }
      });
      v.addEventListener('playing', () => {
        w.playing = true;
        if (w.since !== null) { w.stalledMs += performance.now() - w.since; w.since = null; }
      });
    });
    state = () => page.evaluate(() => {
      const v = document.getElementById('video');
      const h = window.hls;
      const d = h && h.latestLevelDetails;
      const date = h && h.playingDate;
      return { t: v.currentTime, paused: v.paused, now: Date.now(),
               latencyS: date ? (Date.now() - date.getTime()) / 1000 : null,
               lowLatencyMode: h ? h.lowLatencyMode : null,
               parts: d && d.partList ? d.partList.length : 0, partTarget: d ? d.partTarget : null,
               start: v.seekable.length ? v.seekable.start(0) : null,
               end: v.seekable.length ? v.seekable.end(0) : null,
               liveSync: h ? h.liveSyncPosition : null, stalls: window.watch.stalls,
               stalledS: window.watch.stalledMs / 1000,
               errors: window.playerErrors.filter(e => e.endsWith('/true')) };
    });
  } else if (mode === 'shaka') {
    // A page of the stream's origin (Shaka resolves URLs against it) that runs no script of its
    // own (the location's refusal of a bad path), replaced by a bare video.
    await page.goto(new URL('./', target).href);
    await page.setContent('<video id="video" muted autoplay playsinline></video>');
    const shakaJs = fileURLToPath(new URL('node_modules/shaka-player/dist/shaka-player.compiled.js', import.meta.url));
    await page.addScriptTag({ path: shakaJs });
    await page.evaluate(async url => {
      window.playerErrors = [];
      shaka.polyfill.installAll();
      const video = document.getElementById('video');
      const p = window.player = new shaka.Player();
      await p.attach(video);
      p.configure({ streaming: { lowLatencyMode: true } });
      // Severity 2 is CRITICAL: playback stopped. Recoverable ones (a part that never came,
      // answered 404 as RFC 8216bis asks) are counted apart.
      window.recovered = [];
      p.addEventListener('error', e => {
        const what = `${e.detail.code}/${e.detail.data && e.detail.data[0]}/${e.detail.data && e.detail.data[1]}`;
        (e.detail.severity === 2 ? window.playerErrors : window.recovered).push(what);
      });
      await p.load(url);
      await video.play().catch(() => {});
    }, target);
    state = () => page.evaluate(() => {
      const v = document.getElementById('video');
      const p = window.player;
      const date = p.getPlayheadTimeAsDate();
      return { t: v.currentTime, paused: v.paused, now: Date.now(), live: p.isLive(),
               lowLatencyMode: p.getConfiguration().streaming.lowLatencyMode,
               latencyS: date ? (Date.now() - date.getTime()) / 1000 : null,
               recovered: window.recovered, errors: window.playerErrors };
    });
  } else {
    throw new Error('usage: node low_latency.mjs hlsjs PAGE_URL [SEEK_BACK] | shaka MASTER_URL [SECONDS]');
  }
  const waitFor = async (what, ms, pred) => {
    const until = Date.now() + ms;
    for (;;) {
      const s = await state();
      if (pred(s)) return s;
      if (s.errors.length) throw new Error(`${what}: fatal player error ${s.errors.join(', ')}`);
      if (Date.now() > until) throw new Error(`${what}: timed out, last state ${JSON.stringify(s)}`);
      await sleep(250);
    }
  };
  const sampleLatency = async seconds => {
    const xs = [];
    for (let i = 0; i < seconds * 2; i++) {
      const s = await state();
      if (s.errors.length) throw new Error(`fatal player error ${s.errors.join(', ')}`);
      if (s.latencyS != null && !s.paused) xs.push(s.latencyS);
      await sleep(500);
    }
    return xs;
  };
  const started = await waitFor('start playing', 40000, s => s.t > 1 && !s.paused);
  result.lowLatencyMode = started.lowLatencyMode;
  if (mode === 'hlsjs') {
    const withParts = await waitFor('a playlist with parts', 20000, s => s.parts > 0);
    result.partTarget = withParts.partTarget;
    const live = await sampleLatency(6);
    result.liveLatencyS = median(live);
    const seekBack = Number(arg || 60);
    const before = await waitFor('a DVR window to seek in', 120000, s => s.end !== null && s.end - s.start > seekBack + 5);
    const to = before.end - seekBack;
    await page.evaluate(t => { document.getElementById('video').currentTime = t; }, to);
    const back = await waitFor('play after seeking back', 30000, s => s.t > to + 3 && s.t < to + 30 && !s.paused);
    result.seekBackLatencyS = back.latencyS;
    // Back to the live edge, as the page's LIVE button does.
    await page.evaluate(() => { const v = document.getElementById('video'); v.currentTime = window.hls.liveSyncPosition; });
    const returned = await waitFor('return to the live edge', 30000, s => s.latencyS !== null && s.latencyS < 10 && !s.paused);
    await sleep(2000);
    result.returnedLatencyS = median(await sampleLatency(4));
    result.returnedAt = returned.t;
  } else if (mode === 'latency') {
    // Settled first: hls.js starts at the hold-back and then speeds up to its target.
    await sleep(10000);
    const from = await state();
    const xs = [];
    for (let i = 0; i < Number(arg); i++) {
      await sleep(1000);
      const s = await state();
      if (s.errors.length) throw new Error(`fatal player error ${s.errors.join(', ')}`);
      if (s.latencyS != null) xs.push(s.latencyS);
    }
    const to = await state();
    const sorted = [...xs].sort((a, b) => a - b);
    const q = p => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
    result.samples = xs.length;
    result.p50 = q(0.5);
    result.p95 = q(0.95);
    result.stalls = to.stalls - from.stalls;
    result.stalledS = to.stalledS - from.stalledS;
    result.playedS = to.t - from.t;
    result.wallS = (to.now - from.now) / 1000;
  } else {
    const from = await state();
    const played = await sampleLatency(Number(arg || 10));
    const to = await state();
    result.live = to.live;
    result.liveLatencyS = median(played);
    result.playedS = to.t - from.t;
    result.wallS = (to.now - from.now) / 1000;
    result.recovered = to.recovered;
  }
  result.partsFetched = partsFetched;
});
