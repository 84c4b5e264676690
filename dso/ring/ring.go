// Package ring places DSO objects on nodes by consistent hashing. Every
// node owns Replicas virtual points on a 64-bit circle; an object lives on
// the node owning the first point at or after the hash of its reference.
// Clients and servers that build a ring from the same endpoints agree on
// every owner without talking to each other.
package ring

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
)

// DefaultReplicas is the number of virtual points per node.
const DefaultReplicas = 160

// Ring is an immutable consistent-hash ring; it is safe for concurrent use.
type Ring struct {
	nodes  []string
	points []point
}

type point struct {
	hash uint64
	node int32
}

// New builds a ring over the given node names (their endpoints), with
// replicas virtual points each (DefaultReplicas if replicas <= 0).
// Duplicate names are ignored; an empty list is an error.
func New(nodes []string, replicas int) (*Ring, error) {
	if replicas <= 0 {
		replicas = DefaultReplicas
	}
	uniq := slices.Clone(nodes)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	if len(uniq) == 0 {
		return nil, fmt.Errorf("ring: no nodes")
	}
	r := &Ring{nodes: uniq, points: make([]point, 0, len(uniq)*replicas)}
	for i, n := range uniq {
		for v := 0; v < replicas; v++ {
			r.points = append(r.points, point{hash: hashString(n + "#" + strconv.Itoa(v)), node: int32(i)})
		}
	}
	slices.SortFunc(r.points, func(a, b point) int {
		if a.hash < b.hash {
			return -1
		}
		if a.hash > b.hash {
			return 1
		}
		return int(a.node - b.node)
	})
	return r, nil
}

// Nodes returns the ring's nodes, sorted.
func (r *Ring) Nodes() []string { return slices.Clone(r.nodes) }

// Owner returns the node holding the object (typ, key).
func (r *Ring) Owner(typ, key string) string { return r.nodes[r.ownerIndex(typ, key)] }

// Group returns the replica group of a persistent object (typ, key) under
// replication factor rf (1..len(Nodes())), as a group number and the
// members' endpoints, the owner first. Nodes are numbered by their place
// in Nodes() (0-based). With disjoint false (ring groups, for protocols
// that order per group), group i is the owner i and the rf-1 nodes after
// it, wrapping around; when rf covers every node there is one group, 0.
// With disjoint true (multicast groups), the nodes form len(Nodes())/rf
// groups of rf consecutive nodes, and the object's group is the one
// holding its owner. Servers and clients that agree on the nodes, rf and
// disjoint agree on every group.
func (r *Ring) Group(typ, key string, rf int, disjoint bool) (int, []string) {
	n := len(r.nodes)
	rf = min(max(rf, 1), n)
	o := r.ownerIndex(typ, key)
	members := make([]string, 0, rf)
	if disjoint {
		g := o / rf
		members = append(members, r.nodes[o])
		for i := g * rf; i < g*rf+rf && i < n; i++ {
			if i != o {
				members = append(members, r.nodes[i])
			}
		}
		return g, members
	}
	for i := range rf {
		members = append(members, r.nodes[(o+i)%n])
	}
	if rf == n {
		return 0, members
	}
	return o, members
}

func (r *Ring) ownerIndex(typ, key string) int {
	h := HashRef(typ, key)
	i, _ := slices.BinarySearchFunc(r.points, h, func(p point, h uint64) int {
		if p.hash < h {
			return -1
		}
		if p.hash > h {
			return 1
		}
		return 0
	})
	if i == len(r.points) {
		i = 0
	}
	return int(r.points[i].node)
}

// HashRef hashes an object reference: FNV-1a 64 of type, a zero byte, key,
// then a final avalanche mix.
func HashRef(typ, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(typ))
	h.Write([]byte{0})
	h.Write([]byte(key))
	return mix(h.Sum64())
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return mix(h.Sum64())
}

// mix is the splitmix64 finalizer; FNV alone clusters similar keys.
func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}
