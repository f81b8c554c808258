// Package chat owns Confab's domain: users, conversations, participants and
// messages, the rules for who may read and write what, and the events every
// change emits.
//
// Every edge (REST, WebSocket, command line) calls the same Service method,
// so a message sent over REST and one sent over a socket can never drift
// apart. The package knows no SQL and no HTTP: storage sits behind Store and
// live fan-out behind Publisher.
package chat
