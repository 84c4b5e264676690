// Package dso is the shared-object layer of Blossom (CRUCIAL's DSO): the
// object model, the library of object types, and typed client handles.
//
// An object is named by a reference (type, key) and lives on the node that
// owns the reference on the cluster's consistent-hash ring. Its methods run
// there ("ship code to data"): counter.AddAndGet(5) is one round trip and
// one step of the object, never a read-modify-write by the client. An
// object is created by the first call that reaches it, with the
// constructor arguments that call carries, and lives until it is deleted
// or its server stops (ephemeral objects, rf = 1).
//
// The library: AtomicLong, AtomicInt, AtomicBoolean, AtomicReference,
// AtomicByteArray, Counter, Map, Set, List, TreeMap, Matrix, Blob, and the
// synchronization objects CyclicBarrier, ScalableCyclicBarrier (a
// client-side dissemination barrier over semaphores), Semaphore,
// CountDownLatch, Future, Rendezvous and Pipe. User-defined types are
// registered with RegisterType; see its documentation.
//
// The server (dso/server) runs objects; the client (dso/client) reaches
// them; the wire format is in dso/wire and docs/PROTOCOL.md.
package dso
