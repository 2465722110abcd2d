// The page's screenshots in docs/: as it opens (the ready model, a digit drawn on the pad) on a
// laptop screen (1280×800) and on a phone (390×844), each the whole page. Not a test: run it
// after a change to the page's layout, look at both pictures, and commit them.
//
//   scripts/web.sh --build && (cd tests/web && node screenshots.mjs)
import path from "node:path";
import { launch, root, serve } from "./harness.mjs";

const [server, base] = await serve();
const browser = await launch();
try {
  for (const [name, width, height, scale] of [["web-page-1280x800", 1280, 800, 1], ["web-page-phone-390x844", 390, 844, 2]]) {
    const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: scale, isMobile: width < 600, hasTouch: width < 600 });
    const page = await context.newPage();
    await page.goto(base + "?device=cpu");
    await page.waitForFunction(() => window.qnn && window.qnn.status !== "loading", null, { timeout: 60_000 });
    // a 7 on the pad: the ready model scores it at once
    await page.locator("#pad").scrollIntoViewIfNeeded();
    const box = await page.locator("#pad").boundingBox();
    const at = (x, y) => [box.x + (x * box.width) / 280, box.y + (y * box.height) / 280];
    await page.mouse.move(...at(70, 60)); await page.mouse.down();
    await page.mouse.move(...at(210, 60), { steps: 8 });
    await page.mouse.move(...at(120, 230), { steps: 10 }); await page.mouse.up();
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.waitForTimeout(300);
    const file = path.join(root, "docs", `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    console.log(`wrote ${file}`);
    await context.close();
  }
} finally {
  await browser.close();
  server.close();
}
