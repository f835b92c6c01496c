package core

import "fmt"

// MaxResponseHeader bounds the header of every HTTP response sonde reads,
// 1xx responses included: the http prober's (direct, through net/http's
// Transport, over HTTP/2 and HTTP/3), the websocket upgrade's and DNS over
// HTTPS's. It is net/http's default MaxResponseHeaderBytes, which
// blackbox_exporter's http prober and sonde's OCSP requests have, so that
// a header sonde refuses blackbox refuses too; it is set explicitly so
// that this one constant says it.
const MaxResponseHeader = 10 << 20

// ErrHeaderTooLarge is worded as the Transport's, which is classified as a
// malformed response.
var ErrHeaderTooLarge = fmt.Errorf("server response headers exceeded %d bytes", MaxResponseHeader)
