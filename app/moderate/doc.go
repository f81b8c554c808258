// Package moderate owns what keeps a Confab server civil: the reports
// users make of messages and people, the staff accounts that work through
// them, deactivated accounts, and the audit log of every staff action.
//
// Its rules sit in Service, its storage behind Store (db and db/postgres
// implement it, alike by the suite in moderate/storetest). It knows no
// SQL and no HTTP; what reaches sockets (a removed message's tombstone,
// a deactivated user's sockets closing) goes through the chat service,
// so that it is ordered with every other change.
package moderate
