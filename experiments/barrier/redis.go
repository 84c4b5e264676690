package barrier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a party of a cyclic barrier on one Redis server, built on
// BLPOP as the deliverable built its non-resilient Redis barrier: round r
// of barrier KEY has a counter KEY:r:count and a list KEY:r:release. An
// arriving party increments the counter; the one that brings it to the
// number of parties deletes the counter and pushes one token per other
// party on the list, and every other party takes a token with BLPOP. The
// list is gone once the last token is taken, so a round leaves no keys
// behind. Each party keeps its own round number: all parties cross the
// same sequence of rounds.
type Redis struct {
	c       *redis.Client
	key     string
	parties int64
	round   int64
}

// blpopWait is how long one BLPOP blocks before Await checks its context
// and tries again.
const blpopWait = time.Second

// JoinRedis dials the Redis server at addr with a client of one connection
// and returns a party of barrier key for parties parties.
func JoinRedis(ctx context.Context, addr, key string, parties int) (*Redis, error) {
	c := redis.NewClient(&redis.Options{
		Addr: addr, Protocol: 2, DisableIdentity: true, PoolSize: 1,
		DialTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
	})
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("barrier: redis %s: %w", addr, err)
	}
	return &Redis{c: c, key: key, parties: int64(parties)}, nil
}

// Await crosses the next round.
func (b *Redis) Await(ctx context.Context) error {
	base := fmt.Sprintf("%s:%d", b.key, b.round)
	b.round++
	n, err := b.c.Incr(ctx, base+":count").Result()
	if err != nil {
		return err
	}
	if n == b.parties {
		_, err := b.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, base+":count")
			if b.parties > 1 {
				tokens := make([]any, b.parties-1)
				for i := range tokens {
					tokens[i] = "1"
				}
				p.RPush(ctx, base+":release", tokens...)
			}
			return nil
		})
		return err
	}
	if n > b.parties {
		return fmt.Errorf("barrier: redis %s: %d arrivals for %d parties", base, n, b.parties)
	}
	for {
		err := b.c.BLPop(ctx, blpopWait, base+":release").Err()
		if !errors.Is(err, redis.Nil) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Close closes the party's connection.
func (b *Redis) Close() error { return b.c.Close() }
