// Audio languages and subtitles of an hls-dvr stream in real players. Prints one JSON line; exit 0
// when the checks pass.
//   node tracks.mjs hlsjs PAGE_URL SEEK_BACK_SECONDS
//       the player page (hls.js): lists the audio tracks and subtitle tracks, switches to the
//       audio track that is not the default and loads its fragments, turns subtitles on, seeks
//       SEEK_BACK_SECONDS back into the DVR window and reports the cues shown around there, each
//       with the program date-time its start plays at (the caller checks them)
//   node tracks.mjs shaka MASTER_URL
//       Shaka Player: the audio languages and text tracks it lists, the timeline regions
//       (EXT-X-DATERANGE) it reports, and the thumbnail it offers at 5 s (image playlists)
//   node tracks.mjs thumbnails PAGE_URL SCREENSHOT
//       the player page: hovers the scrubber at 30% of the window and reports the thumbnail its
//       tip shows (src, natural width), with a screenshot of the page saved to SCREENSHOT
//   node tracks.mjs strict URL...
//       hls-parser in strict mode parses each playlist (no browser); errors are reported per URL
import { drive } from './chromium.mjs';
import { fileURLToPath } from 'node:url';

const [mode, target, ...rest] = process.argv.slice(2);
const result = { ok: false, mode };
const sleep = ms => new Promise(r => setTimeout(r, ms));

if (mode === 'strict') {
  const HLS = (await import('hls-parser')).default;
  HLS.setOptions({ strictMode: true, silent: true });
  result.checked = [];
  result.failed = [];
  for (const url of [target, ...rest]) {
    const res = await fetch(url);
    const text = await res.text();
    try {
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`);
      HLS.parse(text);
      result.checked.push(url);
    } catch (e) {
      result.failed.push({ url, error: String(e.message || e), text: text.slice(0, 2000) });
    }
  }
  result.ok = result.failed.length === 0;
  console.log(JSON.stringify(result));
  process.exit(result.ok ? 0 : 1);
}

await drive(result, async browser => {
  const page = await browser.newPage();
  const waitFor = async (what, ms, get, pred) => {
    const until = Date.now() + ms;
    for (;;) {
      const s = await get();
      if (pred(s)) return s;
      if (s.errors && s.errors.length) throw new Error(`${what}: fatal player error ${s.errors.join(', ')}`);
      if (Date.now() > until) throw new Error(`${what}: timed out, last state ${JSON.stringify(s)}`);
      await sleep(250);
    }
  };
  if (mode === 'hlsjs') {
    await page.goto(target);
    await page.waitForFunction(() => window.hls, null, { timeout: 20000 });
    await page.evaluate(() => {
      const h = window.hls;
      const log = window.trackLog = { switched: [], audioFrags: [] };
      h.on(Hls.Events.AUDIO_TRACK_SWITCHED, (_, d) => log.switched.push(d.id));
      h.on(Hls.Events.FRAG_LOADED, (_, { frag }) => { if (frag.type === 'audio') log.audioFrags.push(frag.url); });
    });
    const state = () => page.evaluate(() => {
      const v = document.getElementById('video');
      const h = window.hls;
      return { t: v.currentTime, paused: v.paused,
               start: v.seekable.length ? v.seekable.start(0) : null,
               end: v.seekable.length ? v.seekable.end(0) : null,
               audio: h.audioTracks.map(a => ({ name: a.name, lang: a.lang, default: a.default, url: a.url })),
               subtitles: h.subtitleTracks.map(s => ({ name: s.name, lang: s.lang, url: s.url })),
               switched: window.trackLog.switched, audioFrags: window.trackLog.audioFrags.length,
               errors: window.playerErrors.filter(e => e.endsWith('/true')) };
    });
    const started = await waitFor('start playing', 40000, state, s => s.t > 1 && !s.paused && s.audio.length > 0);
    result.audioTracks = started.audio;
    result.subtitleTracks = started.subtitles;
    // The audio track that is not the default: its own fragments must come.
    const other = started.audio.findIndex(a => !a.default);
    if (other < 0) throw new Error(`no second audio track: ${JSON.stringify(started.audio)}`);
    const fragsBefore = started.audioFrags;
    await page.evaluate(i => { window.hls.audioTrack = i; }, other);
    await waitFor('switch audio track', 20000, state, s => s.switched.includes(other));
    const otherDir = new URL('./', started.audio[other].url).pathname;
    const loaded = await page.waitForFunction(([dir, n]) => window.trackLog.audioFrags.slice(n)
      .find(u => new URL(u).pathname.startsWith(dir)), [otherDir, fragsBefore], { timeout: 20000 });
    result.switchedTo = started.audio[other].lang;
    result.switchedFragment = await loaded.jsonValue();
    // Subtitles on, then a minute back into the DVR window.
    await page.evaluate(() => { window.hls.subtitleTrack = 0; window.hls.subtitleDisplay = true; });
    const seekBack = Number(rest[0] || 60);
    const before = await waitFor('a DVR window to seek in', 150000, state,
      s => s.end !== null && s.end - s.start > seekBack + 5);
    const to = before.end - seekBack;
    await page.evaluate(t => { document.getElementById('video').currentTime = t; }, to);
    await waitFor('play after seeking back', 30000, state, s => s.t > to + 6 && s.t < to + 30 && !s.paused);
    // The cues from the seek on, with the date-time their start plays at in the main playlist.
    const cues = () => page.evaluate(from => {
      const h = window.hls;
      const frags = h.levels[h.currentLevel].details.fragments;
      const dateAt = t => {
        const f = frags.find(f => f.start <= t && t < f.start + f.duration);
        return f && f.programDateTime != null ? f.programDateTime + (t - f.start) * 1000 : null;
      };
      const v = document.getElementById('video');
      const out = [];
      for (const track of v.textTracks) {
        if (track.mode === 'disabled' || !track.cues) continue;
        for (const c of track.cues) {
          if (c.startTime >= from && c.startTime < v.currentTime) {
            out.push({ text: c.text, start: c.startTime, dateMs: dateAt(c.startTime), track: track.label });
          }
        }
      }
      return out;
    }, to);
    let shown = [];
    const until = Date.now() + 20000;
    while (shown.length < 2 && Date.now() < until) {
      shown = await cues();
      await sleep(500);
    }
    result.seekedTo = to;
    result.cues = shown;
    if (shown.length < 2) throw new Error(`fewer than two cues after seeking back: ${JSON.stringify(shown)}`);
  } else if (mode === 'thumbnails') {
    await page.setViewportSize({ width: 1100, height: 760 });
    await page.goto(target);
    await page.waitForFunction(() => window.dvr.ready && window.thumbs.list.length > 0, null, { timeout: 40000 });
    const box = await page.locator('#scrubber').boundingBox();
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    const shown = await page.waitForFunction(() => {
      const img = document.querySelector('#scrubber .tip .preview');
      return !img.hidden && img.complete && img.naturalWidth > 0 &&
        { src: img.src, width: img.naturalWidth, when: document.querySelector('#scrubber .tip .when').textContent };
    }, null, { timeout: 20000 });
    result.shown = await shown.jsonValue();
    result.thumbnails = await page.evaluate(() => window.thumbs.list.length);
    if (rest[0]) await page.screenshot({ path: rest[0] });
  } else if (mode === 'shaka') {
    // A page of the stream's origin (Shaka resolves URLs against it), replaced by a bare video.
    await page.goto(new URL('./', target).href);
    await page.setContent('<video id="video" muted autoplay playsinline></video>');
    const shakaJs = fileURLToPath(new URL('node_modules/shaka-player/dist/shaka-player.compiled.js', import.meta.url));
    await page.addScriptTag({ path: shakaJs });
    await page.evaluate(async url => {
      window.playerErrors = [];
      window.regions = [];
      shaka.polyfill.installAll();
      const video = document.getElementById('video');
      const p = window.player = new shaka.Player();
      await p.attach(video);
      p.addEventListener('error', e => { if (e.detail.severity === 2) window.playerErrors.push(String(e.detail.code)); });
      p.addEventListener('timelineregionadded', e => {
        const r = e.detail;
        window.regions.push({ id: r.id, schemeIdUri: r.schemeIdUri, startTime: r.startTime, endTime: r.endTime });
      });
      await p.load(url);
      await video.play().catch(() => {});
    }, target);
    const state = () => page.evaluate(() => {
      const p = window.player;
      return { t: document.getElementById('video').currentTime,
               audioLanguages: [...new Set(p.getAudioTracks().map(a => a.language))],
               text: p.getTextTracks().map(t => ({ language: t.language, kind: t.kind, label: t.label })),
               regions: window.regions, errors: window.playerErrors };
    });
    const s = await waitFor('start playing', 40000, state, s => s.t > 1);
    result.audioLanguages = s.audioLanguages;
    result.textTracks = s.text;
    result.regions = s.regions;
    // The thumbnail at 5 s of the first image track, if the stream has one.
    result.thumbnail = await page.evaluate(async () => {
      const p = window.player;
      const images = p.getImageTracks();
      if (!images.length) return null;
      const t = await p.getThumbnails(images[0].id, 5);
      return t ? { uri: t.uris[0], width: t.width, height: t.height, startTime: t.startTime } : null;
    });
  } else {
    throw new Error('usage: node tracks.mjs hlsjs PAGE_URL SEEK_BACK | shaka MASTER_URL | thumbnails PAGE_URL PNG | strict URL...');
  }
});
