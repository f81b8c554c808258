// Package media decides what Confab keeps of an uploaded attachment.
//
// The type of an upload is sniffed from its bytes, never taken from the
// client's file name or Content-Type. The four raster formats Confab shows
// inline (JPEG, PNG, GIF, WebP) are checked against a pixel limit read from
// their header, then re-encoded (or, for WebP, rewritten at the container
// level) so that what is stored carries no metadata: no EXIF, no GPS
// position, no camera serial number, no text chunks, no comments. Each image
// also gets a small thumbnail. Every other file is stored exactly as sent and
// is only ever served as a download.
//
// The package knows no HTTP, no SQL and no storage backend: it reads from an
// io.ReadSeeker and writes to an io.Writer. It must never hand back bytes it
// has not either re-encoded or copied unchanged from a non-image, and it must
// never decode an image before its pixel count has been checked.
package media
