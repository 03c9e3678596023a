package redismeter

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcraEpoch is time zero of the arrival times the rate script stores.
var gcraEpoch = time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)

// serverNow reads the Redis server's clock, as time since gcraEpoch.
func serverNow(t *testing.T, c *redis.Client) time.Duration {
	t.Helper()
	now, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now.Sub(gcraEpoch)
}

// formatTat writes an arrival time as the rate script stores it.
func formatTat(d time.Duration) string {
	return fmt.Sprintf("%d.%09d", d/time.Second, d%time.Second)
}

// storedTat reads the arrival time stored in a bucket: seconds since
// gcraEpoch with up to nine decimals.
func storedTat(t *testing.T, c *redis.Client, bucket string) time.Duration {
	t.Helper()
	v, err := c.Get(ctx, bucket).Result()
	if err != nil {
		t.Fatalf("GET %s: %v", bucket, err)
	}
	s, frac, _ := strings.Cut(v, ".")
	sec, err1 := strconv.ParseInt(s, 10, 64)
	ns, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	if err1 != nil || err2 != nil || len(frac) > 9 {
		t.Fatalf("bucket %s holds %q, not an arrival time", bucket, v)
	}
	return time.Duration(sec)*time.Second + time.Duration(ns)
}

// TestRateChargesEachStartExactlyOneInterval: n starts move the bucket's
// arrival time on by exactly n intervals. The arrival time is set a minute
// ahead first, so that no start finds the bucket refilled however slow
// the machine, and the burst leaves room for the n starts. Kept as
// floating-point seconds since 2017 (redis_rate), each interval was
// rounded to a multiple of 2⁻²⁴ s: at 1000/s, 2000 starts moved it by
// 1.999974 s, at 125000/s each start cost 7987 ns, and 20 ns cost nothing.
func TestRateChargesEachStartExactlyOneInterval(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	const n = 2000
	for _, tc := range []struct {
		name      string
		perSecond float64
		interval  time.Duration
	}{
		{"at 1000/s each start costs 1ms", 1000, time.Millisecond},
		{"at 125000/s each start costs 8µs", 125_000, 8 * time.Microsecond},
		{"at 5e7/s each start costs 20ns", 5e7, 20},
		{"at 3e9/s each start costs 1ns, as at 1e9/s", 3e9, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("exact-%v", tc.perSecond)
			bucket := "rate:{" + key + "}"
			lead := time.Minute
			burst := int((lead+n*tc.interval)/tc.interval) + 1
			seed := serverNow(t, client) + lead
			if err := client.Set(ctx, bucket, formatTat(seed), time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			m := NewRate(client, key, tc.perSecond, burst)
			for i := range n {
				if p, wait, err := m.TryAcquire(ctx); p == nil || err != nil {
					t.Fatalf("start %d: %v, %v, %v; want a permit", i, p, wait, err)
				}
			}
			if got, want := storedTat(t, client, bucket)-seed, n*tc.interval; got != want {
				t.Errorf("%d starts moved the arrival time on by %v, want exactly %v", n, got, want)
			}
		})
	}
}

// TestRateGrantsNothingBeforeTheNextTokenIsDue: on an empty bucket whose
// next token is a minute away, every start is refused with a wait of at
// most that minute, and none moves the arrival time.
func TestRateGrantsNothingBeforeTheNextTokenIsDue(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	// With a burst of 1, the next token is due at the arrival time.
	seed := serverNow(t, client) + time.Minute
	if err := client.Set(ctx, "rate:{empty}", formatTat(seed), time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		m := NewRate(client, "empty", 1, 1) // a new meter, so that no gate holds it back
		p, wait, err := m.TryAcquire(ctx)
		if p != nil || err != nil || wait > time.Minute || wait < 30*time.Second {
			t.Fatalf("start %d on an empty bucket = %v, %v, %v; want a wait of up to a minute", i, p, wait, err)
		}
	}
	if got := storedTat(t, client, "rate:{empty}"); got != seed {
		t.Errorf("refused starts moved the arrival time by %v", got-seed)
	}
}

// TestRateReadsABucketThatRedisRateWrote: earlier versions of this package
// stored the arrival time through redis_rate, as a float formatted with
// %.17g; a bucket they left is read as the time it says, and written back
// in nanoseconds, a format they read too.
func TestRateReadsABucketThatRedisRateWrote(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	now := serverNow(t, client) + time.Minute
	old := fmt.Sprintf("%d.%08d", now/time.Second, now%time.Second/10) // 312428856.78265297
	if err := client.Set(ctx, "rate:{upgrade}", old, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	m := NewRate(client, "upgrade", 1, 100)
	if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("TryAcquire = %v, %v; want a permit", p, err)
	}
	want := formatTat(now/10*10 + time.Second)
	if got := client.Get(ctx, "rate:{upgrade}").Val(); got != want {
		t.Errorf("bucket holds %q after one start at 1/s from %q, want %q", got, old, want)
	}
}

// From Redis 7.2 on, the float redis_rate stores is written in exponent
// form.
func TestRateReadsABucketThatRedisRateWroteInExponentForm(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	now := serverNow(t, client) + time.Minute
	x := now.Seconds()
	old := strconv.FormatFloat(x, 'e', -1, 64) // 3.124288567826529e+08
	if err := client.Set(ctx, "rate:{upgrade72}", old, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	m := NewRate(client, "upgrade72", 1, 100)
	if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("TryAcquire = %v, %v; want a permit", p, err)
	}
	s := math.Floor(x) // as the script splits it
	tat := time.Duration(s)*time.Second + time.Duration(math.Floor((x-s)*1e9))
	if got, want := client.Get(ctx, "rate:{upgrade72}").Val(), formatTat(tat+time.Second); got != want {
		t.Errorf("bucket holds %q after one start at 1/s from %q, want %q", got, old, want)
	}
}

func TestRateReportsABucketThatHoldsNoTime(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	if err := client.Set(ctx, "rate:{garbled}", "soon", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	_, _, err := NewRate(client, "garbled", 1, 1).TryAcquire(ctx)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "holds no arrival time") {
		t.Fatalf("TryAcquire on a garbled bucket = %v, want ErrUnavailable naming the value", err)
	}
}

// TestRateTakesNoTokenDuringAPause: Redis refuses a start on a paused key
// without taking a token.
func TestRateTakesNoTokenDuringAPause(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	NewRate(client, "pause-free", 1, 1).pause(time.Minute)
	other := NewRate(srv.client(t), "pause-free", 1, 1) // another process
	if p, wait, err := other.TryAcquire(ctx); p != nil || err != nil || wait <= 0 {
		t.Fatalf("TryAcquire during a pause = %v, %v, %v; want a wait", p, wait, err)
	}
	if n := client.Exists(ctx, "rate:{pause-free}").Val(); n != 0 {
		t.Error("a start refused for a pause took a token")
	}
}

// TestRateBucketExpiresOnlyWhenFull: the bucket's key lives until its
// arrival time, rounded up to the millisecond, and no longer.
func TestRateBucketExpiresOnlyWhenFull(t *testing.T) {
	srv := startRedis(t)
	client := srv.client(t)
	seed := serverNow(t, client) + time.Hour + 123456789
	if err := client.Set(ctx, "rate:{expiry}", formatTat(seed), 0).Err(); err != nil {
		t.Fatal(err)
	}
	m := NewRate(client, "expiry", 1000, 10_000_000)
	if p, _, err := m.TryAcquire(ctx); p == nil || err != nil {
		t.Fatalf("TryAcquire = %v, %v; want a permit", p, err)
	}
	tat := gcraEpoch.UnixNano() + int64(seed+time.Millisecond)
	want := (tat + 999_999) / 1e6 // ms since the Unix epoch
	at, err := client.PExpireTime(ctx, "rate:{expiry}").Result()
	if err == nil {
		if got := at.Milliseconds(); got != want {
			t.Errorf("bucket expires at %d ms, want %d ms, its arrival time %d ns rounded up", got, want, tat)
		}
		return
	}
	if !strings.Contains(err.Error(), "unknown command") {
		t.Fatal(err)
	}
	// Before Redis 7 only the time left can be read: it must lie within
	// what the server's clock read just before and just after.
	before := (serverNow(t, client) + gcraEpochOffset()).Milliseconds()
	left, err := client.PTTL(ctx, "rate:{expiry}").Result()
	if err != nil {
		t.Fatal(err)
	}
	after := (serverNow(t, client) + gcraEpochOffset() + time.Millisecond - 1).Milliseconds()
	if got := left.Milliseconds(); got < want-after || got > want-before {
		t.Errorf("bucket expires in %d ms, want between %d and %d ms: its arrival time %d ns rounded up", got, want-after, want-before, tat)
	}
}

// gcraEpochOffset is how far gcraEpoch lies from the Unix epoch.
func gcraEpochOffset() time.Duration { return time.Duration(gcraEpoch.UnixNano()) }

func TestNewGCRARoundsTheIntervalUpAndCapsTheOffset(t *testing.T) {
	for _, tc := range []struct {
		perSecond float64
		burst     int
		want      gcra
	}{
		{1000, 5, gcra{time.Millisecond, 5 * time.Millisecond}},
		{3, 1, gcra{333333334, 333333334}},
		{6.6666666666666664e7, 1, gcra{16, 16}}, // 10⁹ over it rounds to 15 in float64
		{0.2, 2, gcra{5 * time.Second, 10 * time.Second}},
		{1e9, 1, gcra{1, 1}},
		{3e9, 7, gcra{1, 7}},
		{math.MaxFloat64, 1, gcra{1, 1}},
		{1, math.MaxInt, gcra{time.Second, maxOffset / time.Second * time.Second}},
		{1e-9, 3, gcra{1e18, 1e18}},       // 31 years a token: a burst of 3 counts as 1
		{2e-10, 3, gcra{5e18, 5e18}},      // longer than maxOffset a token: 1
		{1e-9 / 0.9, 1, gcra{9e17, 9e17}}, // 28.5 years: still 1
	} {
		if got := newGCRA(tc.perSecond, tc.burst); got != tc.want {
			t.Errorf("newGCRA(%v, %d) = %+v, want %+v", tc.perSecond, tc.burst, got, tc.want)
		}
	}
}

func TestDurationSaturates(t *testing.T) {
	if got := duration(3, 5); got != 3*time.Second+5 {
		t.Errorf("duration(3, 5) = %v", got)
	}
	if got := duration(math.MaxInt64/int64(time.Second), 999_999_999); got != math.MaxInt64 {
		t.Errorf("duration past the longest = %v, want the longest", got)
	}
	if got := satMul(math.MaxInt64/1000, int64(time.Millisecond)); got != math.MaxInt64 {
		t.Errorf("satMul past the longest = %v, want the longest", got)
	}
}
