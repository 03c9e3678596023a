package redismeter

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// peeker is the client a redis_rate limiter sees. It sends each of the
// limiter's script calls in one pipeline with a PTTL of the key's pause
// key, so that a single round trip both asks for a token and tells whether
// some process has paused the key. The limiter reads nothing else.
type peeker struct {
	redis.UniversalClient
	pauseKey string
	pause    time.Duration // the pause left, as the last call found it
}

func (p *peeker) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.peek(ctx, func(pipe redis.Pipeliner) *redis.Cmd { return pipe.Eval(ctx, script, keys, args...) })
}

func (p *peeker) EvalSha(ctx context.Context, sha string, keys []string, args ...any) *redis.Cmd {
	return p.peek(ctx, func(pipe redis.Pipeliner) *redis.Cmd { return pipe.EvalSha(ctx, sha, keys, args...) })
}

func (p *peeker) peek(ctx context.Context, send func(redis.Pipeliner) *redis.Cmd) *redis.Cmd {
	pipe := p.UniversalClient.Pipeline()
	ttl := pipe.PTTL(ctx, p.pauseKey)
	cmd := send(pipe)
	if _, err := pipe.Exec(ctx); err != nil && cmd.Err() == nil {
		cmd.SetErr(err) // the limiter reads only the script's command
	}
	if d, err := ttl.Result(); err == nil && d > 0 {
		p.pause = d
	}
	return cmd
}
