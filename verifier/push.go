package verifier

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscribeConfirmTimeout caps how long New waits for Redis to confirm the
// subscription (never longer than InitialTimeout). Push is best effort: a
// slow or dead Redis must not hold up start-up, since polling covers for it.
const subscribeConfirmTimeout = 5 * time.Second

// pushHealthCheckInterval is how long the subscription may stay silent
// before go-redis pings Redis; a connection that died without a reset is
// only noticed, and replaced, that way.
const pushHealthCheckInterval = 30 * time.Second

// confirmSubscription waits for Redis to acknowledge the subscription made
// before the snapshot and only logs if it does not come: revocations then
// arrive by polling until go-redis reconnects.
func (v *Verifier) confirmSubscription(ctx context.Context, ps *redis.PubSub) {
	ctx, cancel := context.WithTimeout(ctx, min(v.cfg.InitialTimeout, subscribeConfirmTimeout))
	defer cancel()
	if _, err := ps.Receive(ctx); err != nil {
		v.log.Warn("verifier: Redis subscription not confirmed; revocations arrive by polling until it recovers",
			"channel", PushChannel, "err", err)
	}
}

// listen merges push messages until ctx ends. go-redis reconnects and
// resubscribes by itself; messages lost meanwhile come with the next poll.
func (v *Verifier) listen(ctx context.Context, ps *redis.PubSub) {
	defer v.wg.Done()
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(pushHealthCheckInterval))
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			v.pushMessages.Add(1)
			var m Message
			if err := json.Unmarshal([]byte(msg.Payload), &m); err != nil {
				v.log.Warn("verifier: undecodable push message ignored", "err", err)
				continue
			}
			v.apply(m)
			// After applying: a poll the gap watcher triggers must not
			// race ahead of the message that closed the gap.
			v.gaps.saw(m.Seq, time.Now())
		}
	}
}

// apply merges one push message: a revoked session or a cutoff.
func (v *Verifier) apply(m Message) {
	cutoff := v.sweepCutoff()
	switch {
	case m.Issuer != nil:
		if m.Issuer.Exp >= cutoff {
			v.deny.addIssuer(*m.Issuer)
		}
	case len(m.Users) > 0:
		for _, c := range m.Users {
			if c.Exp >= cutoff && !v.deny.addUser(c) {
				v.log.Warn("verifier: push user cutoff with a malformed sub ignored", "sub", c.Sub)
			}
		}
	case m.Exp < cutoff:
	case !v.deny.add(Revocation{JTI: m.JTI, SID: m.SID, Exp: m.Exp}):
		v.log.Warn("verifier: push message with a malformed sid ignored", "sid", m.SID)
	}
}
