package barrier

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// ZooKeeper is a party of a cyclic barrier on ZooKeeper, made of the
// double-barrier recipe of ZooKeeper's documentation (the deliverable's
// reference [51]), one double barrier per round: round r of barrier ROOT is
// the znode ROOT/r-NNNNNNNNNN. To cross it a party
//
//   - enters: sets a watch on ROUND/ready, creates an ephemeral sequential
//     znode ROUND/p-, lists ROUND's children, and, if fewer than the
//     number of parties are process znodes, waits for the watch (ready
//     created); otherwise it creates ROUND/ready itself;
//   - leaves: lists the process znodes again; with none left it is done;
//     if its own is the only one it deletes it; if its own is the lowest it
//     waits for the highest to be deleted; otherwise it deletes its own
//     and waits for the lowest to be deleted; and it lists again.
//
// The last party out (the lowest) also deletes ROUND/ready and ROUND, so
// that rounds leave nothing behind. Each party keeps its own round number:
// all parties cross the same sequence of rounds.
type ZooKeeper struct {
	c       *zk.Conn
	root    string
	parties int
	round   int
}

// silent discards go-zookeeper's log lines.
type silent struct{}

func (silent) Printf(string, ...any) {}

var openACL = zk.WorldACL(zk.PermAll)

// JoinZooKeeper opens a ZooKeeper session with the servers and returns a
// party of the barrier rooted at the znode root (created if missing; its
// parent must exist) for parties parties.
func JoinZooKeeper(ctx context.Context, servers []string, root string, parties int) (*ZooKeeper, error) {
	c, events, err := zk.Connect(servers, 30*time.Second, zk.WithLogger(silent{}), zk.WithLogInfo(false))
	if err != nil {
		return nil, fmt.Errorf("barrier: zookeeper %v: %w", servers, err)
	}
	for ev := range events {
		if ev.State == zk.StateHasSession {
			break
		}
		if ctx.Err() != nil {
			c.Close()
			return nil, fmt.Errorf("barrier: zookeeper %v: no session: %w", servers, ctx.Err())
		}
	}
	if _, err := c.Create(root, nil, 0, openACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		c.Close()
		return nil, fmt.Errorf("barrier: zookeeper: create %s: %w", root, err)
	}
	return &ZooKeeper{c: c, root: root, parties: parties}, nil
}

// Await crosses the next round: enter, then leave.
func (b *ZooKeeper) Await(ctx context.Context) error {
	round := path.Join(b.root, fmt.Sprintf("r-%010d", b.round))
	b.round++
	if _, err := b.c.Create(round, nil, 0, openACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("zookeeper: create %s: %w", round, err)
	}
	me, err := b.enter(ctx, round)
	if err != nil {
		return err
	}
	return b.leave(ctx, round, me)
}

// procs returns the process znodes among round's children, sorted by
// sequence number (their names differ only in it).
func (b *ZooKeeper) procs(round string) ([]string, error) {
	kids, _, err := b.c.Children(round)
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil // the last party out removed the round
	}
	if err != nil {
		return nil, fmt.Errorf("zookeeper: children of %s: %w", round, err)
	}
	kids = slices.DeleteFunc(kids, func(k string) bool { return !strings.HasPrefix(k, "p-") })
	slices.Sort(kids)
	return kids, nil
}

func (b *ZooKeeper) enter(ctx context.Context, round string) (string, error) {
	ready := round + "/ready"
	there, _, watch, err := b.c.ExistsW(ready)
	if err != nil {
		return "", fmt.Errorf("zookeeper: exists %s: %w", ready, err)
	}
	created, err := b.c.Create(round+"/p-", nil, zk.FlagEphemeral|zk.FlagSequence, openACL)
	if err != nil {
		return "", fmt.Errorf("zookeeper: create under %s: %w", round, err)
	}
	me := path.Base(created)
	if there {
		return me, nil
	}
	kids, err := b.procs(round)
	if err != nil {
		return "", err
	}
	if len(kids) >= b.parties {
		if _, err := b.c.Create(ready, nil, 0, openACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return "", fmt.Errorf("zookeeper: create %s: %w", ready, err)
		}
		return me, nil
	}
	return me, wait(ctx, watch)
}

func (b *ZooKeeper) leave(ctx context.Context, round, me string) error {
	mine := round + "/" + me
	for {
		kids, err := b.procs(round)
		if err != nil || len(kids) == 0 {
			return err
		}
		if len(kids) == 1 && kids[0] == me {
			if err := b.c.Delete(mine, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("zookeeper: delete %s: %w", mine, err)
			}
			// The last one out removes the round.
			for _, p := range []string{round + "/ready", round} {
				if err := b.c.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
					return fmt.Errorf("zookeeper: delete %s: %w", p, err)
				}
			}
			return nil
		}
		target := kids[0]
		if kids[0] == me {
			target = kids[len(kids)-1]
		} else if slices.Contains(kids, me) {
			if err := b.c.Delete(mine, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("zookeeper: delete %s: %w", mine, err)
			}
		}
		there, _, watch, err := b.c.ExistsW(round + "/" + target)
		if err != nil {
			return fmt.Errorf("zookeeper: exists %s: %w", target, err)
		}
		if there {
			if err := wait(ctx, watch); err != nil {
				return err
			}
		}
	}
}

// wait waits for one event of a watch.
func wait(ctx context.Context, watch <-chan zk.Event) error {
	select {
	case ev, ok := <-watch:
		if !ok {
			return errors.New("zookeeper: watch closed")
		}
		if ev.Err != nil {
			return fmt.Errorf("zookeeper: watch: %w", ev.Err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close ends the party's session.
func (b *ZooKeeper) Close() error {
	b.c.Close()
	return nil
}
