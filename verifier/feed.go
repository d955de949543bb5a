package verifier

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// feedClient polls GET /sessions/revoked. It is used by one goroutine at a
// time (New, then the poll loop), so it needs no lock. Its url and token URL
// are set by Verifier.use once discovery has run.
type feedClient struct {
	url    string
	client *http.Client
	cc     clientcredentials.Config
	tok    *oauth2.Token
	cursor string // the cursor of the last good answer; "" before the first
	// v1: authd refused format 2 (a release before it), so this client
	// polls the v1 array, which lists sessions only.
	v1 bool
}

// feedSink receives what a poll returns, entry by entry.
type feedSink struct {
	session func(Revocation)
	user    func(UserCutoff)
	issuer  func(IssuerCutoff)
}

// FeedV2 is the format-2 answer of GET /sessions/revoked?format=2: sessions
// revoked on their own, user cutoffs and the issuer-wide cutoff (nil: none),
// and the since of the next poll. authd's encoder is tested against it.
type FeedV2 struct {
	Format   int           `json:"format"`
	Cursor   string        `json:"cursor"`
	Sessions []Revocation  `json:"sessions"`
	Users    []UserCutoff  `json:"users"`
	Issuer   *IssuerCutoff `json:"issuer"`
}

func newFeedClient(cfg Config) *feedClient {
	return &feedClient{
		client: cfg.HTTPClient,
		cc: clientcredentials.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret,
		},
	}
}

// errUnauthorized marks a 401 from the feed: the service token is no longer
// accepted (expired on authd's clock, revoked, or signed by a removed key).
var errUnauthorized = errors.New("feed refused the service token (401)")

// errNoV2 marks a 400 to a format-2 poll: authd predates format 2.
var errNoV2 = errors.New("feed refused format=2 (400)")

// poll requests the entries since the last cursor (everything on the first
// call) and passes each to the sink. On a 401 it gets a new service token
// and tries once more; on a 400 to format 2 it falls back to v1 for good.
// The cursor only advances when the whole answer was read.
func (f *feedClient) poll(ctx context.Context, to feedSink, log func(string, ...any)) error {
	err := f.pollOnce(ctx, to)
	if errors.Is(err, errNoV2) {
		log("verifier: authd does not serve feed format 2; polling the v1 feed (no cutoff entries)")
		f.v1 = true
		err = f.pollOnce(ctx, to)
	}
	if errors.Is(err, errUnauthorized) {
		f.tok = nil
		err = f.pollOnce(ctx, to)
	}
	return err
}

func (f *feedClient) token(ctx context.Context) (string, error) {
	if f.tok.Valid() {
		return f.tok.AccessToken, nil
	}
	tok, err := f.cc.Token(context.WithValue(ctx, oauth2.HTTPClient, f.client))
	if err != nil {
		return "", fmt.Errorf("service token: %w", err)
	}
	f.tok = tok
	return tok.AccessToken, nil
}

func (f *feedClient) pollOnce(ctx context.Context, to feedSink) error {
	bearer, err := f.token(ctx)
	if err != nil {
		return err
	}
	q := url.Values{}
	if !f.v1 {
		q.Set("format", "2")
	}
	if f.cursor != "" {
		q.Set("since", f.cursor)
	}
	u := f.url
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	res, err := f.client.Do(req) // the transport asks for and decodes gzip itself
	if err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		return fmt.Errorf("feed: %w: %s", errUnauthorized, res.Header.Get("WWW-Authenticate"))
	case http.StatusBadRequest:
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		if !f.v1 {
			return fmt.Errorf("feed: %w", errNoV2)
		}
		return fmt.Errorf("feed: GET %s: status 400", f.url)
	default:
		return fmt.Errorf("feed: GET %s: status %d", f.url, res.StatusCode)
	}
	if f.v1 {
		return f.readV1(res.Header, res.Body, to)
	}
	// An authd before format 2 ignores the parameter and answers the v1
	// array: read it as such, and ask for v1 from then on.
	br := bufio.NewReader(res.Body)
	for {
		c, err := br.Peek(1)
		if err != nil {
			return fmt.Errorf("feed: empty body: %w", err)
		}
		switch c[0] {
		case ' ', '\t', '\r', '\n':
			_, _ = br.ReadByte()
			continue
		case '[':
			f.v1 = true
			return f.readV1(res.Header, br, to)
		}
		return f.readV2(br, to)
	}
}

func (f *feedClient) readV1(h http.Header, body io.Reader, to feedSink) error {
	cursor := h.Get(CursorHeader)
	if _, err := strconv.ParseInt(cursor, 10, 64); err != nil {
		return fmt.Errorf("feed: bad %s %q", CursorHeader, cursor)
	}
	// Streamed: a full snapshot can hold millions of entries.
	dec := json.NewDecoder(body)
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return fmt.Errorf("feed: body is not a JSON array: %v", err)
	}
	for dec.More() {
		var r Revocation
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("feed: decode entry: %w", err)
		}
		to.session(r)
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("feed: truncated body: %w", err)
	}
	f.cursor = cursor
	return nil
}

// readV2 decodes a format-2 answer whole: with cutoffs it stays small (a
// bulk revocation is one entry), and nothing is applied unless all of it
// decoded.
func (f *feedClient) readV2(body io.Reader, to feedSink) error {
	var v FeedV2
	if err := json.NewDecoder(body).Decode(&v); err != nil {
		return fmt.Errorf("feed: decode format 2: %w", err)
	}
	if v.Format != 2 {
		return fmt.Errorf("feed: answer of format %d, want 2", v.Format)
	}
	if _, err := strconv.ParseInt(v.Cursor, 10, 64); err != nil {
		return fmt.Errorf("feed: bad cursor %q", v.Cursor)
	}
	for _, r := range v.Sessions {
		to.session(r)
	}
	for _, c := range v.Users {
		to.user(c)
	}
	if v.Issuer != nil {
		to.issuer(*v.Issuer)
	}
	f.cursor = v.Cursor
	return nil
}
