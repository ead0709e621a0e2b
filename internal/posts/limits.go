package posts

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits of decisions and edits (SPEC §8 Limits): each member, and each
// post, has a token bucket. A person clicking or an integration retrying
// stays well inside them; a flood is refused with 429 and Retry-After before
// it reaches the post's workflow.
var (
	// PerMember: 30 changes a minute, in bursts of 10.
	PerMember = Rate{Every: 2 * time.Second, Burst: 10}
	// PerPost: 60 changes a minute, in bursts of 20 (a team approving at once).
	PerPost = Rate{Every: time.Second, Burst: 20}
)

// PerMinute is n changes a minute, in bursts of a third of it (at least 10).
func PerMinute(n int) Rate {
	return Rate{Every: time.Minute / time.Duration(max(n, 1)), Burst: max(10, n/3)}
}

// Rate is one token every Every, at most Burst at once.
type Rate struct {
	Every time.Duration
	Burst int
}

// maxKeys bounds a limiter's memory: past it, buckets idle long enough to be
// full again are dropped (they would allow a full burst anyway).
const maxKeys = 10000

// limiter is a keyed set of token buckets with bounded memory.
type limiter struct {
	rate Rate
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newLimiter(r Rate, now func() time.Time) *limiter {
	return &limiter{rate: r, now: now, keys: map[string]*bucket{}}
}

// reserve takes a token for key, or returns how long until one is free
// (taking nothing).
func (l *limiter) reserve(key string) (time.Duration, *rate.Reservation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.keys[key]
	if b == nil {
		if len(l.keys) >= maxKeys {
			l.sweep(now)
		}
		b = &bucket{lim: rate.NewLimiter(rate.Every(l.rate.Every), l.rate.Burst)}
		l.keys[key] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, nil
	}
	return 0, r
}

// sweep drops the buckets idle for longer than it takes to refill them; if
// that frees nothing (a flood of distinct keys), it drops the oldest half.
func (l *limiter) sweep(now time.Time) {
	full := l.rate.Every * time.Duration(l.rate.Burst)
	for k, b := range l.keys {
		if now.Sub(b.last) > full {
			delete(l.keys, k)
		}
	}
	if len(l.keys) < maxKeys {
		return
	}
	var mean int64 // of the last uses: about half the buckets are older
	for _, b := range l.keys {
		mean += b.last.UnixNano() / int64(len(l.keys))
	}
	cut := time.Unix(0, mean)
	for k, b := range l.keys {
		if !b.last.After(cut) {
			delete(l.keys, k)
		}
	}
}

// Limits rate-limits changes per member and per post.
type Limits struct {
	member, post *limiter
	now          func() time.Time
}

// NewLimits builds the limiters with the given rates.
func NewLimits(perMember, perPost Rate, now func() time.Time) *Limits {
	if now == nil {
		now = time.Now
	}
	return &Limits{member: newLimiter(perMember, now), post: newLimiter(perPost, now), now: now}
}

// Allow takes one change for the member on the post, or returns how long to
// wait (taking nothing from either bucket).
func (l *Limits) Allow(memberID, postID string) time.Duration {
	d, mr := l.member.reserve(memberID)
	if d > 0 {
		return d
	}
	d, _ = l.post.reserve(postID)
	if d > 0 {
		mr.CancelAt(l.now())
		return d
	}
	return 0
}
