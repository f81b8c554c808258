// Package web owns Confab's built-in browser console: plain HTML, CSS and
// JavaScript modules embedded into the binary, with no build step.
//
// It only hands out files. It must never know about HTTP routing, the
// database or the hub: the api package decides where FS is mounted and which
// headers (Content-Security-Policy and friends) go with it. The console talks
// to the server like any other client, through the public REST API and the
// WebSocket described in the wire contract.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// FS returns the console's files rooted at the static folder, so that
// "index.html", "app.js", "style.css" and "favicon.svg" sit at its top level.
func FS() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "static" is a constant
		// that the go:embed directive above has already checked.
		panic("web: " + err.Error())
	}
	return sub
}
