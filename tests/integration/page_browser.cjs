// Drives Debian's chromium through npm playwright-core for page_browser_test.py.
// Usage: node page_browser.cjs '<json>' where json is {"viewport": {...}, "steps": [...],
// "host_rules": "MAP shop.test 127.0.0.1" (chromium's --host-resolver-rules, optional),
// "ignore_https_errors": true (a test CA's certificates; optional)};
// prints {"results": [...], "console_errors", "page_errors", "dialogs", "violations",
// "requests"} as one JSON line. Steps:
//   {"goto": url}                     {"reload": true}
//   {"fill": [label, value]}          {"click": selector}
//   {"wait": selector}                {"wait_text": [selector, text]}
//   {"text": selector}                {"count": selector}
//   {"eval": expression}              {"screenshot": name}   (build/test-artifacts/page/name.png)
//   {"frame_text": [url part, selector]}: text in the frame whose URL contains the part
//   {"goto_with_state": url}: goto url + the result of the step before (a value the page made)
const path = require('path');
const fs = require('fs');
const { chromium } = require(path.resolve(process.env.NPM_PREFIX, 'node_modules', 'playwright-core'));

const plan = JSON.parse(process.argv[2]);
const artifacts = path.resolve(process.env.ARTIFACTS_DIR || 'build/test-artifacts/page');
fs.mkdirSync(artifacts, { recursive: true });

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'].concat(plan.host_rules ? [`--host-resolver-rules=${plan.host_rules}`] : []),
  });
  const report = { results: [], console_errors: [], page_errors: [], dialogs: 0, violations: [], requests: [] };
  try {
    const context = await browser.newContext({ viewport: plan.viewport || { width: 1024, height: 800 },
      ignoreHTTPSErrors: Boolean(plan.ignore_https_errors) });
    const page = await context.newPage();
    page.setDefaultTimeout(10000);
    page.on('console', (message) => { if (message.type() === 'error') report.console_errors.push(message.text()); });
    page.on('pageerror', (error) => report.page_errors.push(String(error)));
    page.on('dialog', (dialog) => { report.dialogs += 1; dialog.dismiss().catch(() => {}); });
    page.on('request', (request) => report.requests.push(`${request.method()} ${new URL(request.url()).pathname}`));
    // Content-Security-Policy violations, in every frame (init scripts run under any CSP).
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (event) => {
        console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
      });
    });
    for (const step of plan.steps) {
      const [kind, argument] = Object.entries(step)[0];
      let result = null;
      switch (kind) {
        case 'goto': await page.goto(argument, { waitUntil: 'load' }); break;
        case 'goto_with_state': {
          const previous = report.results.filter((value) => typeof value === 'string').pop() ?? '';
          await page.goto(argument + previous, { waitUntil: 'load' });
          break;
        }
        case 'reload': await page.reload({ waitUntil: 'load' }); break;
        case 'fill': await page.getByLabel(argument[0], { exact: false }).first().fill(argument[1]); break;
        case 'click': await page.click(argument); break;
        case 'wait': await page.waitForSelector(argument, { state: 'visible' }); break;
        case 'wait_text':
          await page.waitForFunction(([selector, text]) => document.querySelector(selector)?.textContent.includes(text), argument);
          break;
        case 'text': result = await page.locator(argument).first().innerText(); break;
        case 'count': result = await page.locator(argument).count(); break;
        case 'eval': result = await page.evaluate(argument); break;
        case 'screenshot': await page.screenshot({ path: path.join(artifacts, `${argument}.png`), fullPage: true }); break;
        case 'frame_text': {
          const deadline = Date.now() + 10000;
          let frame;
          while (!(frame = page.frames().find((f) => f.url().includes(argument[0]))) && Date.now() < deadline)
            await page.waitForTimeout(100);
          if (!frame) throw new Error(`no frame at ${argument[0]}`);
          await frame.waitForSelector(argument[1], { timeout: 5000 });
          result = await frame.locator(argument[1]).first().innerText();
          break;
        }
        default: throw new Error(`unknown step ${kind}`);
      }
      report.results.push(result);
    }
  } catch (error) {
    report.error = String(error && error.stack || error);
  } finally {
    report.violations = report.console_errors.filter((text) => text.startsWith('CSP violation'));
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify(report)}\n`);
})();
