// Opens one memtop --html page in Debian's chromium (headless, driven over
// CDP by puppeteer-core), uses it as a person would, and prints what it saw
// as one JSON object for tests/runtime/test_html.cpp to assert on:
//   node check_html.js PAGE SCREENSHOT.png SITE[,SITE...]
// It judges nothing itself, except that the page must load and draw.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const puppeteer = require('puppeteer-core');

// The pixels of a PNG from chromium (8-bit RGB or RGBA, not interlaced).
function decodePng(buf) {
  let at = 8, width = 0, height = 0, type = 0;
  const idat = [];
  while (at < buf.length) {
    const len = buf.readUInt32BE(at), kind = buf.toString('ascii', at + 4, at + 8);
    const data = buf.subarray(at + 8, at + 8 + len);
    if (kind === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4); type = data[9];
      if (data[8] !== 8 || (type !== 2 && type !== 6) || data[12] !== 0) throw new Error('unexpected PNG format');
    } else if (kind === 'IDAT') idat.push(data);
    at += 12 + len;
  }
  const bpp = type === 6 ? 4 : 3, stride = width * bpp, raw = zlib.inflateSync(Buffer.concat(idat));
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[y * stride + x - bpp] : 0, b = y ? out[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y ? out[(y - 1) * stride + x - bpp] : 0;
      let v = src[x];
      if (f === 1) v += a;
      else if (f === 2) v += b;
      else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      out[y * stride + x] = v & 255;
    }
  }
  return { width, height, bpp, data: out };
}

// Pixels of an element's box that are not the page's white background.
async function inkOf(page, selector) {
  const handle = await page.$(selector);
  if (!handle) return 0;
  const png = decodePng(Buffer.from(await handle.screenshot({ type: 'png' })));
  let ink = 0;
  for (let i = 0; i < png.data.length; i += png.bpp)
    if (png.data[i] < 240 || png.data[i + 1] < 240 || png.data[i + 2] < 240) ink++;
  return ink;
}

async function main() {
  const [pagePath, shot, sites, pythonSites] = process.argv.slice(2);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'memtop-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: profile,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync'],
  });
  const out = { errors: [], requests: [] };
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const url = 'file://' + path.resolve(pagePath);
    page.on('console', m => { if (m.type() === 'error' || m.type() === 'warn') out.errors.push(m.type() + ': ' + m.text()); });
    page.on('pageerror', e => out.errors.push('pageerror: ' + e.message));
    page.on('request', r => { if (r.url() !== url) out.requests.push(r.url()); });
    page.on('requestfailed', r => { if (r.url() !== url) out.errors.push('request failed: ' + r.url()); });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="1"]', { timeout: 10000 });
    // The moment the page opened on, and the one it is shown minus ('' for none).
    out.view = await page.evaluate(() => ({ moment: document.getElementById('moment').value, base: document.getElementById('base').value,
                                            note: document.getElementById('flame-note').textContent }));

    out.chart = await page.evaluate(() => ({
      lines: document.querySelectorAll('#chart .series-line').length,
      dots: document.querySelectorAll('#chart .series-dot').length,
      peaks: [...document.querySelectorAll('#chart .peak-marker')].map(g => g.getAttribute('data-metric')),
      // Each line's peak marker: [pid, metric, exact bytes].
      peakBytes: [...document.querySelectorAll('#chart .peak-marker')].map(g =>
        [Number(g.getAttribute('data-pid')), g.getAttribute('data-metric'), Number(g.getAttribute('data-bytes'))]),
      pythonLines: [...document.querySelectorAll('#chart .series-line[data-metric="Python"]')].map(l =>
        [Number(l.getAttribute('data-pid')), l.getAttribute('points').split(' ').length]),
      moments: document.querySelectorAll('#chart .moment-mark').length,
      processes: document.querySelectorAll('#procs input').length,
    }));
    out.chart.ink = await inkOf(page, '#chart');
    // Only the axes, the grid and the labels: what an empty chart has.
    // The same chart with every line switched off (as a user would, so a
    // redraw keeps it): axes, grid and labels only.
    const boxes = await page.$$('#series-controls input[type=checkbox]');
    for (const b of boxes) if (await b.evaluate(e => e.checked)) await b.click();
    out.chart.axesInk = await inkOf(page, '#chart');
    for (const b of boxes) await b.click();
    out.flame = await page.evaluate(() => {
      const svg = document.querySelector('#flame svg');
      return { frames: svg ? svg.querySelectorAll('g.frame').length : 0, width: svg ? svg.getBoundingClientRect().width : 0 };
    });
    out.flame.ink = await inkOf(page, '#flame');
    await page.screenshot({ path: shot, fullPage: true });

    // Per site: the flame graph's frames of that name, summed (a site can
    // be reached by several paths), and what hovering the first one shows.
    const names = sites ? sites.split(',') : [];
    out.sites = {};
    await page.evaluate(() => document.getElementById('flame').scrollIntoView());
    for (const name of names) {
      const frames = await page.$$eval('#flame g.frame', (gs, n) => gs.filter(g => g.getAttribute('data-name') === n && !g.classList.contains('ancestor'))
        .map(g => ({ value: Number(g.getAttribute('data-value')), count: Number(g.getAttribute('data-count')), at: g.getAttribute('data-at') })), name);
      const site = { frames: frames.length, bytes: frames.reduce((a, f) => a + f.value, 0), allocs: frames.reduce((a, f) => a + f.count, 0),
                     at: frames.length ? frames[0].at : '' };
      if (frames.length) {
        // The mouse on the middle of the frame (a frame can be under a
        // pixel wide: puppeteer's hover() refuses those).
        const box = await page.evaluate(n => {
          const r = [...document.querySelectorAll('#flame g.frame')].find(g => g.getAttribute('data-name') === n).querySelector('rect').getBoundingClientRect();
          return { x: r.x + r.width / 2, y: r.y + r.height / 2 };
        }, name);
        await page.mouse.move(box.x, box.y);
        site.tooltip = await page.$eval('#tip', t => (t.hidden ? '' : t.textContent));
      }
      site.table = await page.$$eval('#top tr.stack-row', (rows, n) => rows.filter(r => r.getAttribute('data-leaf') === n)
        .map(r => Number(r.children[1].textContent.replace(/,/g, ''))), name);
      out.sites[name] = site;
    }

    // Click to zoom: the clicked frame then spans the flame graph's width.
    if (names.length) {
      const name = names[0];
      const rect = await page.evaluateHandle(n => [...document.querySelectorAll('#flame g.frame')].find(g => g.getAttribute('data-name') === n).querySelector('rect'), name);
      const before = await rect.evaluate(r => r.getBoundingClientRect().width);
      await rect.click();
      out.zoom = await page.evaluate(n => {
        const svg = document.querySelector('#flame svg');
        const g = [...svg.querySelectorAll('g.frame')].find(x => x.getAttribute('data-name') === n);
        return { name: n, svgWidth: svg.getBoundingClientRect().width, width: g ? g.querySelector('rect').getBoundingClientRect().width : 0,
                 frames: svg.querySelectorAll('g.frame').length };
      }, name);
      out.zoom.before = before;
      await page.click('#reset');
      out.zoom.resetFrames = await page.$$eval('#flame g.frame', gs => gs.length);
    }

    // Search: the frames matching, and the bytes under them.
    if (names.length) {
      await page.type('#search', names[0]);
      out.search = await page.evaluate(() => ({ matches: document.querySelectorAll('#flame g.frame.match').length,
                                                bytes: Number(document.getElementById('matched').getAttribute('data-value')) }));
      await page.$eval('#search', s => { s.value = ''; s.dispatchEvent(new Event('input')); });
    }

    // Bytes allocated in all: every site, freed ones too.
    out.alloc = {};
    await page.select('#metric', 'alloc');
    for (const name of names)
      out.alloc[name] = await page.$$eval('#flame g.frame', (gs, n) => gs.filter(g => g.getAttribute('data-name') === n)
        .reduce((a, g) => [a[0] + Number(g.getAttribute('data-value')), a[1] + Number(g.getAttribute('data-count'))], [0, 0]), name);
    await page.select('#metric', 'inuse');

    // Every moment of the run: the flame graph follows the selection.
    out.moments = await page.$$eval('#moment option', os => os.length);
    out.momentFrames = [];
    for (let i = 0; i < out.moments; i++) {
      await page.select('#moment', String(i));
      out.momentFrames.push(await page.evaluate(() => {
        const svg = document.querySelector('#flame svg');
        return svg ? Number(svg.getAttribute('data-moment')) === Number(document.getElementById('moment').value) ? svg.querySelectorAll('g.frame').length : -1 : 0;
      }));
    }
    // Between two moments: the last one minus the first.
    out.between = {};
    if (out.moments > 1) {
      await page.select('#moment', String(out.moments - 1));
      await page.select('#base', '0');
      for (const name of names)
        out.between[name] = await page.$$eval('#flame g.frame', (gs, n) => gs.filter(g => g.getAttribute('data-name') === n)
          .reduce((a, g) => [a[0] + Number(g.getAttribute('data-value')), a[1] + Number(g.getAttribute('data-count'))], [0, 0]), name);
      await page.select('#base', '');
    }
    out.tables = await page.evaluate(() => ({
      processes: document.querySelectorAll('#proc-table tr').length - 1,
      lost: document.querySelectorAll('#lost tr').length - 1,
      meta: document.querySelectorAll('#meta tr').length,
      exact: !!document.querySelector('#summary .exact'),
      summary: document.getElementById('summary').textContent,
    }));
    // Python's object domain (--python-objects): its section's rows, and
    // its flame graph of objects allocated in all, per site.
    out.python = await page.evaluate(() => ({
      shown: !document.getElementById('python').hidden,
      note: document.getElementById('python-note').textContent,
      rows: [...document.querySelectorAll('#python-table tr.python-row')].map(tr => [...tr.children].map(td =>
        td.classList.contains('num') ? Number(td.textContent.replace(/,/g, '')) : td.textContent)),
    }));
    out.python.alloc = {};
    if (await page.$('#metric option[value="python_alloc"]')) {
      await page.select('#metric', 'python_alloc');
      for (const name of pythonSites ? pythonSites.split(',') : [])
        out.python.alloc[name] = await page.$$eval('#flame g.frame', (gs, n) => gs.filter(g => g.getAttribute('data-name') === n)
          .reduce((a, g) => [a[0] + Number(g.getAttribute('data-value')), a[1] + Number(g.getAttribute('data-count'))], [0, 0]), name);
      await page.select('#metric', 'inuse');
    }
    out.pwned = await page.evaluate(() => window.pwned === 1);
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

module.exports = { decodePng };
if (require.main === module)
  main().catch(e => { process.stderr.write('check_html: ' + (e.stack || e) + '\n'); process.exit(1); });
