package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	cursor string // X-Revocation-Cursor of the last good answer; "" before the first
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

// poll requests the entries since the last cursor (everything on the first
// call) and passes each to add. On a 401 it gets a new service token and
// tries once more. The cursor only advances when the whole answer was read.
func (f *feedClient) poll(ctx context.Context, add func(Revocation)) error {
	err := f.pollOnce(ctx, add)
	if errors.Is(err, errUnauthorized) {
		f.tok = nil
		err = f.pollOnce(ctx, add)
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

func (f *feedClient) pollOnce(ctx context.Context, add func(Revocation)) error {
	bearer, err := f.token(ctx)
	if err != nil {
		return err
	}
	u := f.url
	if f.cursor != "" {
		u += "?since=" + f.cursor
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("feed: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Accept", "application/json")
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
	default:
		return fmt.Errorf("feed: GET %s: status %d", f.url, res.StatusCode)
	}
	cursor := res.Header.Get(CursorHeader)
	if _, err := strconv.ParseInt(cursor, 10, 64); err != nil {
		return fmt.Errorf("feed: bad %s %q", CursorHeader, cursor)
	}
	// Streamed: a full snapshot can hold millions of entries.
	dec := json.NewDecoder(res.Body)
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return fmt.Errorf("feed: body is not a JSON array: %v", err)
	}
	for dec.More() {
		var r Revocation
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("feed: decode entry: %w", err)
		}
		add(r)
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("feed: truncated body: %w", err)
	}
	f.cursor = cursor
	return nil
}
