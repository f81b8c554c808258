// Package browsertest holds the real-browser tests of the built-in console:
// a headless Chromium, driven with chromedp, against a real server on a
// temporary SQLite file. It has no code of its own outside its tests, and it
// must never be imported: it only exists so that chromedp stays out of
// every other package's test build.
//
// The tests need Chromium. Without it they skip on a developer's machine
// and fail when CI is set (CI=true), so that CI never passes by skipping.
// Set CONFAB_SHOTS_DIR to keep a copy of every screenshot the tests take.
package browsertest
