package feed

import (
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/seedc5a8123e/authd/internal/postgres"
	"github.com/seedc5a8123e/authd/verifier"
)

func fs(sid string, at time.Time, exp int64, cutoff bool) postgres.FeedSession {
	return postgres.FeedSession{RevokedSession: postgres.RevokedSession{JTI: "j" + sid, SID: sid, Exp: exp, Cutoff: cutoff}, RevokedAt: at}
}

// TestMergeDedupesSortsAndExpires: the rows a read repeats (the hold-back
// window) stay one entry, the order is (revoked_at, sid) as the SQL's, and
// what expired by the read's time is gone.
func TestMergeDedupesSortsAndExpires(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	a := fs("00000000-0000-4000-8000-00000000000a", t0, t0.Unix()+60, false)
	b := fs("00000000-0000-4000-8000-00000000000b", t0.Add(time.Second), t0.Unix()+5, false)
	c := fs("00000000-0000-4000-8000-00000000000c", t0, t0.Unix()+60, true)
	st := merge(nil, []postgres.FeedSession{a, c, b}, nil, t0, Cursor(t0), 0, t0)
	if got := sidsOf(st.sessions); !reflect.DeepEqual(got, []string{a.SID, c.SID, b.SID}) {
		t.Fatalf("first read = %v", got)
	}
	if st.cursor != Cursor(t0) || st.minExp != b.Exp {
		t.Fatalf("cursor %d minExp %d", st.cursor, st.minExp)
	}
	// Nothing new: the entries and the v1 cache are shared.
	same := merge(st, []postgres.FeedSession{b}, nil, t0.Add(time.Second), Cursor(t0.Add(time.Second)), 0, t0)
	if &same.sessions[0] != &st.sessions[0] || same.v1 != st.v1 || same.v2 == st.v2 {
		t.Fatal("an unchanged read did not share the entries and the v1 cache")
	}
	// b expires, d arrives, a is read again.
	d := fs("00000000-0000-4000-8000-00000000000d", t0.Add(2*time.Second), t0.Unix()+60, false)
	next := merge(same, []postgres.FeedSession{a, d}, nil, time.Unix(b.Exp, 0), Cursor(time.Unix(b.Exp, 0)), 0, t0)
	if got := sidsOf(next.sessions); !reflect.DeepEqual(got, []string{a.SID, c.SID, d.SID}) {
		t.Fatalf("after expiry and a repeat = %v", got)
	}
	if next.v1 == st.v1 {
		t.Fatal("changed entries kept the old v1 cache")
	}
	if next.from(t0.Add(time.Second)) != 2 || next.from(t0) != 0 || next.from(t0.Add(time.Hour)) != 3 {
		t.Fatalf("from: %d %d %d", next.from(t0.Add(time.Second)), next.from(t0), next.from(t0.Add(time.Hour)))
	}
}

func sidsOf(es []postgres.FeedSession) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.SID)
	}
	return out
}

// TestV2OmitsCutoffSessionsAndMergesUsers: format 2 lists only sessions
// revoked on their own; in a full snapshot one entry per user (the later nbf,
// the later exp); the issuer entry merged the same way whatever since is.
func TestV2OmitsCutoffSessionsAndMergesUsers(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	u := "11111111-1111-4111-8111-111111111111"
	st := merge(nil,
		[]postgres.FeedSession{
			fs("00000000-0000-4000-8000-00000000000a", t0, t0.Unix()+60, false),
			fs("00000000-0000-4000-8000-00000000000c", t0, t0.Unix()+60, true),
		},
		[]postgres.Cutoff{
			{ID: 1, UserID: u, RevokedAt: t0, NBF: t0.Unix() + 1, Exp: t0.Unix() + 600},
			{ID: 2, UserID: u, RevokedAt: t0.Add(time.Second), NBF: t0.Unix() + 2, Exp: t0.Unix() + 30},
			{ID: 3, RevokedAt: t0, NBF: t0.Unix() + 1, Exp: t0.Unix() + 700},
			{ID: 4, RevokedAt: t0.Add(time.Second), NBF: t0.Unix() + 2, Exp: t0.Unix() + 40},
		}, t0.Add(2*time.Second), Cursor(t0.Add(2*time.Second)), 0, t0)
	var got verifier.FeedV2
	a := st.encodeV2(time.Unix(0, 0), t0.Unix()+2, true)
	if err := json.Unmarshal(a.Body, &got); err != nil {
		t.Fatalf("%s: %v", a.Body, err)
	}
	want := []verifier.UserCutoff{{Sub: u, NBF: t0.Unix() + 2, Exp: t0.Unix() + 600}}
	if len(got.Sessions) != 1 || got.Sessions[0].SID != "00000000-0000-4000-8000-00000000000a" || !reflect.DeepEqual(got.Users, want) ||
		got.Issuer == nil || *got.Issuer != (verifier.IssuerCutoff{NBF: t0.Unix() + 2, Exp: t0.Unix() + 700}) || a.Entries != 3 {
		t.Fatalf("full v2 = %s", a.Body)
	}
	// A delta from after the first user cutoff: only the second, raw; the
	// issuer entry still.
	d := st.encodeV2(t0.Add(time.Second), t0.Unix()+2, false)
	if err := json.Unmarshal(d.Body, &got); err != nil || len(got.Users) != 1 || got.Users[0].NBF != t0.Unix()+2 ||
		got.Users[0].Exp != t0.Unix()+30 || got.Issuer == nil || len(got.Sessions) != 0 {
		t.Fatalf("delta v2 = %s (%v)", d.Body, err)
	}
}

// TestV2AppendJSONRoundTrips: encoding/json reads back from the hand
// encoder's bytes exactly the object it was given, in the wire types the
// verifier decodes.
func TestV2AppendJSONRoundTrips(t *testing.T) {
	type wire = verifier.FeedV2
	for name, v := range map[string]V2{
		"Empty": {Cursor: 0},
		"All": {Cursor: 1764599985,
			Sessions: []postgres.RevokedSession{{JTI: "0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a", SID: "6f1c1a8e-3b7e-4e0e-9a55-1f0d2c3b4a59", Exp: 1}},
			Users: []postgres.Cutoff{{UserID: "11111111-1111-4111-8111-111111111111", NBF: 2, Exp: 3},
				{UserID: "21111111-1111-4111-8111-111111111111", NBF: 4, Exp: 5}},
			Issuer: &postgres.Cutoff{NBF: 6, Exp: 7}},
	} {
		t.Run(name, func(t *testing.T) {
			w := wire{Format: 2, Cursor: strconv.FormatInt(v.Cursor, 10), Sessions: []verifier.Revocation{}, Users: []verifier.UserCutoff{}}
			for _, e := range v.Sessions {
				w.Sessions = append(w.Sessions, verifier.Revocation{JTI: e.JTI, SID: e.SID, Exp: e.Exp})
			}
			for _, c := range v.Users {
				w.Users = append(w.Users, verifier.UserCutoff{Sub: c.UserID, NBF: c.NBF, Exp: c.Exp})
			}
			if v.Issuer != nil {
				w.Issuer = &verifier.IssuerCutoff{NBF: v.Issuer.NBF, Exp: v.Issuer.Exp}
			}
			got := v.AppendJSON(nil)
			var back wire
			if err := json.Unmarshal(got, &back); err != nil || !reflect.DeepEqual(back, w) {
				t.Fatalf("AppendJSON = %s; decoded %+v, %v; want %+v", got, back, err, w)
			}
		})
	}
}
