package dso

// Read-only methods of the types that are not value objects, so that a
// read does not create them and a read-only token may call them. The value
// objects use readMethods (persist.go).

var (
	matrixReads     = map[string]bool{"rows": true, "cols": true, "get": true, "getRow": true, "toArray": true}
	blobReads       = map[string]bool{"read": true, "size": true, "readAt": true}
	barrierReads    = map[string]bool{"getParties": true, "getNumberWaiting": true, "generation": true}
	semaphoreReads  = map[string]bool{"availablePermits": true}
	latchReads      = map[string]bool{"getCount": true}
	futureReads     = map[string]bool{"get": true, "isDone": true}
	pipeReads       = map[string]bool{"size": true, "isClosed": true}
	rendezvousReads = map[string]bool{}
)

// ReadOnly implements ReadOnlyMethods.
func (o *matrix) ReadOnly(m string) bool { return matrixReads[m] }

// ReadOnly implements ReadOnlyMethods.
func (o *blob) ReadOnly(m string) bool { return blobReads[m] }

// ReadOnly implements ReadOnlyMethods.
func (b *barrier) ReadOnly(m string) bool { return barrierReads[m] }

// ReadOnly implements ReadOnlyMethods.
func (s *semaphore) ReadOnly(m string) bool { return semaphoreReads[m] }

// ReadOnly implements ReadOnlyMethods.
func (l *latch) ReadOnly(m string) bool { return latchReads[m] }

// ReadOnly implements ReadOnlyMethods: get parks until the value is set,
// without changing the future.
func (f *future) ReadOnly(m string) bool { return futureReads[m] }

// ReadOnly implements ReadOnlyMethods.
func (p *pipe) ReadOnly(m string) bool { return pipeReads[m] }

// ReadOnly implements ReadOnlyMethods: exchange changes the rendezvous.
func (r *rendezvous) ReadOnly(m string) bool { return rendezvousReads[m] }
