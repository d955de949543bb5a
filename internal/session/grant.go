package session

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/seedc5a8123e/authd/internal/audit"
	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/internal/statuslist"
	"github.com/seedc5a8123e/authd/internal/throttle"
	"github.com/seedc5a8123e/authd/internal/token"
	"github.com/seedc5a8123e/authd/internal/username"
)

// checkPassword returns the user if username and pw match an enabled user,
// and whether the stored hash should be upgraded. Unknown users cost one
// dummy verification so timing reveals nothing.
//
// tx, when not nil, is the throttle's transaction of the check, whose
// connection the user is read on.
func (s *Service) checkPassword(ctx context.Context, tx *postgres.Tx, login, pw string) (postgres.User, bool, error) {
	name, err := username.Map(login)
	if err != nil {
		// No user can have this name (the rule at creation), and it must not
		// reach the database; the same dummy check keeps the timing of any
		// other unknown user.
		s.hasher.VerifyDummy(pw)
		return postgres.User{}, false, ErrInvalidCredentials
	}
	var u postgres.User
	if tx != nil {
		u, err = tx.UserByUsername(name)
	} else {
		u, err = s.db.UserByUsername(ctx, name)
	}
	if errors.Is(err, postgres.ErrNotFound) {
		s.hasher.VerifyDummy(pw)
		return postgres.User{}, false, ErrInvalidCredentials
	}
	if err != nil {
		return postgres.User{}, false, err
	}
	ok, rehash, err := s.hasher.Verify(pw, u.PasswordHash)
	if err != nil {
		s.log.Error("stored password hash is unreadable", "user_id", u.ID, "err", err)
		return postgres.User{}, false, ErrInvalidCredentials
	}
	if !ok && u.Role == RoleService {
		// During a rotation a service identity holds a second secret
		// (account.Service.AddSecret); it costs a second verification.
		if ok, err = s.otherSecret(ctx, u.ID, pw); err != nil {
			return postgres.User{}, false, err
		}
		rehash = false // the password was not the secret given
	}
	if !ok || u.DisabledAt != nil {
		return postgres.User{}, false, ErrInvalidCredentials
	}
	return u, rehash, nil
}

// otherSecret reports whether pw is one of the service identity's added
// secrets.
func (s *Service) otherSecret(ctx context.Context, userID, pw string) (bool, error) {
	hashes, err := s.db.ServiceSecretHashes(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, h := range hashes {
		if ok, _, err := s.hasher.Verify(pw, h); err == nil && ok {
			return true, nil
		}
	}
	return false, nil
}

// rehash upgrades a hash made with older parameters. A failure only means the
// upgrade waits for the next login.
func (s *Service) rehash(ctx context.Context, u postgres.User, pw string) {
	h, err := s.hasher.Hash(pw)
	if err == nil {
		err = s.db.UpdatePasswordHash(ctx, u.ID, u.PasswordHash, h, s.clock.Now())
	}
	if err != nil {
		s.log.Warn("password rehash failed", "user_id", u.ID, "err", err)
	}
}

// loginKey is the throttle key of a login name. Names longer than any user
// may have are keyed by their digest, so every name a client sends fits the
// throttle's key and still counts as itself.
func loginKey(name string) string {
	if m, err := username.Map(name); err == nil {
		return "login:" + m // look-alike spellings of one name count together
	}
	if len(name) <= MaxUsernameLen {
		return "login:" + name
	}
	sum := sha256.Sum256([]byte(name))
	return "login:sha256:" + hex.EncodeToString(sum[:])
}

// CheckClientID refuses a client_id a grant may not name: one that is not
// UTF-8, contains NUL or is longer than MaxClientIDLen bytes
// (ErrBadClientID). Empty, naming no client, is allowed.
func CheckClientID(id string) error {
	if len(id) > MaxClientIDLen || !utf8.ValidString(id) || strings.ContainsRune(id, 0) {
		return ErrBadClientID
	}
	return nil
}

// PasswordGrant (RFC 6749 4.3) creates a session with a refresh token,
// issued to the public client m.ClientID names (DefaultClientID if none).
func (s *Service) PasswordGrant(ctx context.Context, name, pw string, m Meta) (Grant, error) {
	if err := CheckClientID(m.ClientID); err != nil {
		return Grant{}, err
	}
	return s.login(ctx, name, pw, GrantPassword, m)
}

// ClientCredentialsGrant (RFC 6749 4.4) authenticates a service user and
// creates a session that lives exactly as long as its one access token. Its
// client_id is the service identity's name, whatever m.ClientID says.
func (s *Service) ClientCredentialsGrant(ctx context.Context, clientID, secret string, m Meta) (Grant, error) {
	g, err := s.login(ctx, clientID, secret, GrantClientCredentials, m)
	if errors.Is(err, ErrInvalidCredentials) {
		return Grant{}, ErrInvalidClient
	}
	return g, err
}

// login checks the password under the brute-force throttle and creates the
// session in the throttle's transaction, so that a successful login is one
// durable commit; then it announces the sessions the cap evicted and
// upgrades a hash made with older parameters (which does not change the
// credentials version the session insert is conditional on). Login keys
// live under "login:", and the name is taken as given, so unknown and known
// usernames count alike.
func (s *Service) login(ctx context.Context, name, pw, grant string, m Meta) (Grant, error) {
	var (
		g       Grant
		evicted []postgres.RevokedSession
		u       postgres.User
		rehash  bool
	)
	err := s.throttle.Guard(ctx, throttle.Attempt{Key: loginKey(name), IP: m.IP, Admit: s.hasher.Admit,
		Check: func(tx *postgres.Tx) error {
			g, evicted, rehash = Grant{}, nil, false
			var err error
			if u, rehash, err = s.checkPassword(ctx, tx, name, pw); err != nil {
				return err
			}
			if grant == GrantClientCredentials && u.Role != RoleService {
				return ErrInvalidCredentials
			}
			// A service identity's secret is a client credential: it gets no
			// refresh token, and nothing is written. Told only to a caller
			// that knew the secret.
			if grant == GrantPassword && u.Role == RoleService {
				return ErrUnauthorizedClient
			}
			// A client that hung up gets no session; a wrong password it
			// sent was recorded all the same (above, by the throttle).
			if err := ctx.Err(); err != nil {
				return err
			}
			g, evicted, err = s.createSession(ctx, tx, u, grant, m)
			return err
		},
		Wrong: func(err error) bool { return errors.Is(err, ErrInvalidCredentials) },
	})
	if err != nil {
		return Grant{}, err
	}
	s.Announce(ctx, ReasonSessionLimit, postgres.Revocations{Sessions: evicted})
	s.obs.TokenIssued(grant)
	if rehash {
		s.rehash(ctx, u, pw)
	}
	return g, nil
}

// createSession makes the session of a password grant (with a refresh token)
// or a client_credentials grant (without), in tx (the login's transaction)
// or, when tx is nil, in a transaction of its own. A user whose password,
// role or state changed since checkPassword gets ErrInvalidCredentials, as
// if the change had come first. It returns the sessions the cap evicted,
// for the caller to announce once tx has committed.
//
// The session is issued to a client: the service identity itself for
// client_credentials, else the client m names, else DefaultClientID.
func (s *Service) createSession(ctx context.Context, tx *postgres.Tx, u postgres.User, grant string, m Meta) (Grant, []postgres.RevokedSession, error) {
	withRefresh := grant == GrantPassword
	clientID := m.ClientID
	switch {
	case grant == GrantClientCredentials:
		clientID = u.Username
	case clientID == "":
		clientID = DefaultClientID
	}
	sid := uuid.NewString()
	entry, err := s.allocateStatus(ctx)
	if err != nil {
		return Grant{}, nil, err
	}
	status := s.statusRef(entry)
	ns := postgres.NewSession{
		ID: sid, UserID: u.ID, UserAgent: m.UserAgent, IP: m.IP, ClientID: clientID,
		UserCredentialsVersion: u.CredentialsVersion, UserRole: u.Role,
		MaxLive: s.limits.MaxPerUser, LimitReason: ReasonSessionLimit,
		StatusListID: entry.List, StatusIdx: entry.Idx, Grant: grant,
	}
	g := Grant{SID: sid, ClientID: clientID}
	if withRefresh {
		var err error
		if g.RefreshToken, err = token.NewRefreshFor(sid); err != nil {
			return Grant{}, nil, err
		}
		ns.RefreshTokenHash = token.HashRefresh(g.RefreshToken)
	}
	// Minted inside the session's transaction, after the cutoffs it must
	// respect are known and locked (postgres.CreateSession).
	mint := func(f postgres.MintFloor) (postgres.MintedSession, error) {
		now := s.clock.Now()
		end := now.Add(s.limits.SessionTTL)
		minted, err := s.signer.MintAccess(token.Access{
			Subject: u.ID, SID: sid, Role: u.Role, ClientID: clientID, NotAfter: end, MinIssuedAt: f.Min(),
			Status: status,
		})
		if err != nil {
			return postgres.MintedSession{}, err
		}
		if !withRefresh {
			end = minted.ExpiresAt
		}
		g.AccessToken, g.ExpiresIn = minted.Token, expiresIn(minted, now)
		return postgres.MintedSession{CreatedAt: now, ExpiresAt: end, JTI: minted.JTI, AccessExp: minted.ExpiresAt, IssuedAt: minted.IssuedAt}, nil
	}
	create := func() ([]postgres.RevokedSession, error) {
		if tx != nil {
			return tx.CreateSessionMinting(ns, mint)
		}
		return s.db.CreateSessionMinting(ctx, ns, mint)
	}
	evicted, err := create()
	if errors.Is(err, postgres.ErrNoStatusLists) {
		// Migrated down since the list was leased: mint again without the
		// claim, which would name a bit that can never be set.
		s.status.Forget()
		status, ns.StatusListID, ns.StatusIdx = nil, 0, 0
		evicted, err = create()
	}
	if err != nil {
		if errors.Is(err, postgres.ErrUserChanged) {
			return Grant{}, nil, ErrInvalidCredentials
		}
		return Grant{}, nil, err
	}
	return g, evicted, nil
}

func expiresIn(m token.Minted, now time.Time) int64 {
	return int64(m.ExpiresAt.Sub(now).Round(time.Second) / time.Second)
}

// RefreshGrant is RefreshGrantWith naming no client.
func (s *Service) RefreshGrant(ctx context.Context, refresh string) (Grant, error) {
	return s.RefreshGrantWith(ctx, refresh, Meta{})
}

// RefreshGrantWith (RFC 6749 6) rotates the refresh token. The old token
// stops working; presenting it, or any token rotated away before it, again
// revokes the session as a presumed theft (ErrRefreshReused).
//
// The refresh token is bound to the session's client (RFC 6749 section 6):
// the new access token keeps its client_id, and a refresh whose m.ClientID
// names another is refused (ErrClientMismatch) without writing anything; a
// just-rotated token presented within the reuse grace by another client is
// a reuse, not a race. A session that records no client yet (created by an
// older release, or on the schema before migration 000007) gets the one
// this refresh names, or DefaultClientID, recorded where the schema can.
func (s *Service) RefreshGrantWith(ctx context.Context, refresh string, m Meta) (Grant, error) {
	if err := CheckClientID(m.ClientID); err != nil {
		return Grant{}, err
	}
	if g, ok, err := s.refreshCurrent(ctx, refresh, m); ok || err != nil {
		return g, err
	}
	s.obs.RefreshFullPath()
	var (
		g       Grant
		reused  bool
		raced   bool
		idle    bool
		revoked *postgres.RevokeResult
	)
	// A revoking transaction, since the reuse path revokes, and a minting
	// one (postgres.InMintTx).
	err := s.db.InMintTx(ctx, func(tx *postgres.Tx) error {
		// Locked FOR UPDATE: concurrent refreshes with one token queue up
		// here, and the second finds the token rotated away, as a reuse.
		st, err := tx.LockSessionByRefreshHash(token.RefreshSID(refresh), token.HashRefresh(refresh))
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if st.Role == RoleService {
			return ErrUnauthorizedClient // only client_credentials for services
		}
		clientID, bind := st.ClientID, ""
		sameClient := m.ClientID == "" || clientID == "" || m.ClientID == clientID
		if clientID == "" {
			clientID = cmp.Or(m.ClientID, DefaultClientID)
			if st.ClientIDColumn {
				bind = clientID
			}
		}
		// Two tabs sharing storage refresh at once: the loser presents the
		// token the winner just rotated away. Within the grace that is no
		// theft; nothing is written and the winner's token stays good. Only
		// the token rotated away last, only while the session is live, and
		// only for the session's own client.
		if st.Reused && st.Previous && !st.Revoked && st.LastRefreshedAt != nil && sameClient &&
			s.limits.ReuseGrace > 0 && now.Sub(*st.LastRefreshedAt) <= s.limits.ReuseGrace {
			raced = true
			return nil
		}
		if st.Reused {
			s.log.Warn("refresh token reuse detected; revoking session", "sid", st.SessionID, "user_id", st.UserID)
			// The grant fails, but the revocation must commit: fn returns
			// nil and ErrRefreshReused is returned after the commit.
			reused = true
			if err := tx.Audit(postgres.AuditEvent{At: now, Type: audit.RefreshReuse, SubjectUserID: st.UserID,
				SessionID: st.SessionID, Detail: map[string]any{"already_revoked": st.Revoked}}); err != nil {
				return err
			}
			if st.Revoked {
				return nil
			}
			revoked, err = tx.RevokeSession(postgres.RevokeRequest{SID: st.SessionID, Reason: ReasonRefreshReuse, At: now})
			return err
		}
		if st.Revoked || st.UserDisabled || !now.Before(st.ExpiresAt) {
			return ErrInvalidRefresh
		}
		// Last minted before the issuer-wide cutoff: its tokens are denied,
		// this one included, and the cutoff's sweep marks the row revoked.
		if !st.Floor.IssuerCutAt.IsZero() && st.LastActive.Before(st.Floor.IssuerCutAt) {
			return ErrInvalidRefresh
		}
		if !sameClient {
			return ErrClientMismatch
		}
		if s.limits.idle(st.LastActive, now) {
			// As with reuse, the refusal must not roll the revocation back.
			idle = true
			revoked, err = tx.RevokeSession(postgres.RevokeRequest{SID: st.SessionID, Reason: ReasonIdleTimeout, At: now})
			return err
		}
		minted, err := s.signer.MintAccess(token.Access{
			Subject: st.UserID, SID: st.SessionID, Role: st.Role, ClientID: clientID, NotAfter: st.ExpiresAt,
			MinIssuedAt: st.Floor.Min(),
			Status:      s.statusRef(statuslist.Entry{List: st.StatusListID, Idx: st.StatusIdx}),
		})
		if err != nil {
			return ErrInvalidRefresh // the session ends within the second
		}
		rt, err := token.NewRefreshFor(st.SessionID)
		if err != nil {
			return err
		}
		// Last: any error before the commit rolls the rotation back, so a
		// rotation is never committed when the grant fails.
		if err := tx.RotateRefresh(postgres.Rotation{
			SID: st.SessionID, NewHash: token.HashRefresh(rt), JTI: minted.JTI, AccessExp: minted.ExpiresAt,
			IssuedAt: minted.IssuedAt, At: now,
			BindClientID: bind,
		}); err != nil {
			return err
		}
		g = Grant{AccessToken: minted.Token, ExpiresIn: expiresIn(minted, now), RefreshToken: rt, SID: st.SessionID,
			ClientID: clientID}
		return nil
	})
	switch {
	case errors.Is(err, postgres.ErrNotFound):
		return Grant{}, ErrInvalidRefresh
	case err != nil:
		return Grant{}, err
	case raced:
		s.obs.RefreshRaced()
		return Grant{}, ErrRefreshRaced
	case idle:
		if revoked != nil {
			s.Announce(ctx, ReasonIdleTimeout, postgres.Revocations{Sessions: []postgres.RevokedSession{revoked.Entry}})
		}
		return Grant{}, ErrInvalidRefresh
	case reused:
		if revoked != nil {
			s.Announce(ctx, ReasonRefreshReuse, postgres.Revocations{Sessions: []postgres.RevokedSession{revoked.Entry}})
		}
		s.obs.RefreshReused()
		return Grant{}, ErrRefreshReused
	}
	s.obs.TokenIssued(GrantRefreshToken)
	return g, nil
}

// refreshCurrent is the common refresh in one round trip: the current token
// of a session that needs no decision, rotated by one statement that checks
// in SQL what RefreshGrantWith checks in Go (postgres.Tx.RotateCurrentRefresh),
// with the new access token's id and times chosen before it and the token
// signed after the commit. ok is false, with nothing written, when the
// refresh needs the full path: a token rotated away (reuse or race), an
// unknown one, a session revoked, expiring, idle or cut off, a client
// mismatch or none bound, a cutoff that moves the new token's iat, or a
// token of a release before NewRefreshFor.
//
// The signature comes after the commit, so the rotation cannot wait for
// it; the stamp holds the signing key, which leaves the signature nothing
// to fail on but a broken key (then the client is told invalid_grant and
// must log in again, as after any refresh whose answer it lost).
//
// now is read before the statement, the full path's after its lock: a
// refresh that waited for a lock is judged (idle, expiry) as of when it
// arrived, at most postgres.MaxRevokeTx earlier, and the idle bound
// travels to the database at microsecond precision.
func (s *Service) refreshCurrent(ctx context.Context, refresh string, m Meta) (g Grant, ok bool, err error) {
	sid := token.RefreshSID(refresh)
	if sid == "" {
		return Grant{}, false, nil
	}
	now := s.clock.Now()
	stamp := s.signer.NewStamp()
	rt, err := token.NewRefreshFor(sid)
	if err != nil {
		return Grant{}, false, err
	}
	r := postgres.CurrentRotation{
		SID: sid, Hash: token.HashRefresh(refresh), NewHash: token.HashRefresh(rt), JTI: stamp.JTI,
		IssuedAt: stamp.IssuedAt, AccessExp: stamp.ExpiresAt, At: now, ClientID: m.ClientID, ServiceRole: RoleService,
	}
	if s.limits.IdleTTL > 0 {
		r.IdleSince = now.Add(-s.limits.IdleTTL)
	}
	var rs postgres.RotatedSession
	err = s.db.InMintTx(ctx, func(tx *postgres.Tx) error {
		rs, err = tx.RotateCurrentRefresh(r)
		return err
	})
	if errors.Is(err, postgres.ErrNotFound) {
		return Grant{}, false, nil
	}
	if err != nil {
		return Grant{}, false, err
	}
	minted, err := s.signer.MintStamped(token.Access{
		Subject: rs.UserID, SID: sid, Role: rs.Role, ClientID: rs.ClientID, NotAfter: rs.ExpiresAt,
		Status: s.statusRef(statuslist.Entry{List: rs.StatusListID, Idx: rs.StatusIdx}),
	}, stamp)
	if err != nil {
		s.log.Error("access token not signed after its rotation committed", "sid", sid, "err", err)
		return Grant{}, true, ErrInvalidRefresh
	}
	s.obs.TokenIssued(GrantRefreshToken)
	return Grant{AccessToken: minted.Token, ExpiresIn: expiresIn(minted, now), RefreshToken: rt, SID: sid,
		ClientID: rs.ClientID}, true, nil
}
