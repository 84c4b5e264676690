// Package transport is the network between the replicas of a replication
// protocol running in real processes: it carries protocols.Message values,
// encoded with the protocol's protocols.Codec, between protocols.NodeIDs.
//
// TCP is the real transport (plain TCP or TLS); Network is an in-memory
// network for tests with partitions.
//
// # Contract
//
// Send never blocks on the network: it encodes the message in the caller's
// goroutine (so the caller may reuse the message's memory afterwards) and
// appends the bytes to the peer's bounded outbound queue (Config.QueueLen
// messages; the bound is in messages, not bytes). When the
// queue is full, because the peer is slow, unreachable or down, the oldest
// queued message is dropped and counted in Stats.Dropped; messages to
// unknown peers and messages that cannot be encoded are dropped and counted
// too. A message to the node itself is handed to the Handler asynchronously,
// from a transport goroutine, never from inside Send. Protocols retransmit,
// so dropping under overload is correct: the caller's goroutine is never
// held up by the network.
//
// Messages between two nodes travel over one connection and arrive in the
// order they were sent while that connection lives (FIFO per connection),
// but there is no delivery guarantee: messages are lost when a queue
// overflows, when a connection breaks, or when a node restarts, and nothing
// is retransmitted by the transport. The Handler may be called concurrently
// from several goroutines (one per connection, plus one for messages to
// self) and must not block for long.
//
// Close stops every goroutine the transport started before it returns.
//
// # Connections
//
// There is one TCP connection per pair of nodes: the node with the lower id
// dials the one with the higher id, and the accepted connection carries
// messages in both directions. A node refuses a connection dialed by a
// higher id, so two nodes never keep two connections. The dialer reconnects
// with a jittered backoff doubling from 20ms to 2s; messages queued while
// disconnected are kept, up to QueueLen. If an accepted peer connects again
// (it restarted), the new connection replaces the old one. TCP_NODELAY and
// TCP keepalives are set; in addition each side writes a keepalive frame on
// a connection idle for Config.Heartbeat and closes a connection on which
// nothing arrived for Config.IdleTimeout, so a dead peer is noticed.
//
// # Handshake
//
// Before any frame, the dialer writes (integers big-endian):
//
//	"BLSM"         4 bytes  magic
//	version        1 byte   1
//	len(cluster)   1 byte
//	cluster        len(cluster) bytes, the cluster name
//	from           4 bytes  the dialer's node id
//	to             4 bytes  the node id the dialer expects to reach
//
// and the acceptor answers:
//
//	"BLSM"         4 bytes  magic
//	version        1 byte   1
//	status         1 byte   0 accepted, 1 refused
//	len(reason)    1 byte   0 when accepted
//	reason         len(reason) bytes of text, why the connection is refused
//
// The acceptor refuses a dialer whose cluster name differs from its own,
// whose id is not one of its configured peers (or is its own, or is higher
// than its own), or that expects another node id; it writes the reason,
// closes the connection and logs it, e.g.
//
//	refused peer 3 from 127.0.0.1:50312: cluster name "blue" != "red" expected by node 2
//
// The dialer logs the reason it was given when it first sees it (and then at
// most every 30s while it does not change) and keeps retrying with backoff.
// A connection that does not start with the magic is closed without an
// answer. Future versions keep the magic and version bytes in place.
//
// # Frames
//
// After the handshake, each direction is a sequence of frames:
//
//	length         4 bytes  big-endian length of the body
//	body           length bytes: one message encoded by the Codec
//
// A frame with length 0 is a keepalive and carries no message (so a message
// must not encode to zero bytes). A frame longer than Config.MaxFrame is a
// broken stream: the receiver closes the connection and logs it; the body
// is read into a buffer grown as bytes arrive, never sized from an
// unchecked length. A body the codec cannot decode is dropped, counted in
// Stats.DecodeErrors and logged (rate-limited), and the connection is kept.
//
// Each peer has one writer goroutine, which drains the queue into a
// buffered writer and flushes when the queue is empty, so a burst of
// messages shares system calls.
//
// # Shared transports
//
// Several instances of one protocol in one process (one per replica group,
// in package runner) share one transport with TagCodec: each body is the
// instance's tag as an unsigned varint (at most 32 bits, shortest
// encoding), then the protocol codec's encoding of the message. Messages
// are sent and received as Tagged values; a malformed tag is a decoding
// error like any other, and the receiver's Handler dispatches on the tag.
package transport
