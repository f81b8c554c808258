// Package blob keeps chat attachments: immutable blobs under keys the
// caller chooses. Dir keeps them as files under a folder (one node, next
// to its SQLite database); S3 keeps them in an S3-compatible object store
// (several nodes). Both satisfy Store and pass the same behaviour suite
// (blobtest).
//
// A Put that returns nil is durable, and replacing a key is atomic, so a
// caller may reference a key from its database as soon as Put returns.
//
// blob knows nothing of messages, users or HTTP: it never decides which
// keys exist, only keeps what it is given. Errors name the operation and
// the key, never a credential.
package blob
