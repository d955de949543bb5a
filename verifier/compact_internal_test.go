package verifier

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestMaxTokenBytesIsTheCompactLimit(t *testing.T) {
	if MaxTokenBytes != maxCompactBytes {
		t.Fatalf("MaxTokenBytes %d, maxCompactBytes %d", MaxTokenBytes, maxCompactBytes)
	}
}

const compactSample = "eyJhbGciOiJFZERTQSIsImtpZCI6InRlc3Qta2V5IiwidHlwIjoiYXQrand0In0." +
	"eyJpc3MiOiJodHRwOi8vYXV0aGQudGVzdCIsInN1YiI6IjViMGU2ZjBhLTFjMmQtNGUzZi04YTliLTBjMWQyZTNmNGE1YiIsImF1ZCI6WyJhdXRoZCJdLCJpYXQiOjE4OTM0OTkyMDAsIm5iZiI6MTg5MzQ5OTIwMCwiZXhwIjoxODkzNDk5ODAwLCJqdGkiOiIxZjJlM2Q0Yy01YjZhLTQ5NzgtODY5NS1hNGIzYzJkMWUwZjkiLCJzaWQiOiI5YThiN2M2ZC01ZTRmLTRhM2ItOWMyZC0xZTBmOWE4YjdjNmQiLCJyb2xlIjoidXNlciJ9." +
	"c2lnbmF0dXJlIHNpZ25hdHVyZSBzaWduYXR1cmUgc2lnbmF0dXJlIHNpZ25hdHVyZSBzaWduYXR1cmUgc2lnbmF0dXI"

func TestCheckCompactDoesNotAllocate(t *testing.T) {
	if err := checkCompact(compactSample); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = checkCompact(compactSample) }); n != 0 {
		t.Fatalf("checkCompact allocates %v times per token", n)
	}
}

func BenchmarkCheckCompact(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if err := checkCompact(compactSample); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFoldEqual(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		eq         bool
	}{
		{"sub", "sub", true}, {"SUB", "sub", true}, {"sUb", "sub", true}, {"\u017fub", "sub", true},
		{"\u212aid", "kid", true}, {"su", "sub", false}, {"subs", "sub", false}, {"", "sub", false},
		{"s\xffb", "sub", false}, {"şub", "sub", false},
	} {
		if got := foldEqual([]byte(tt.name), tt.want); got != tt.eq {
			t.Errorf("foldEqual(%q, %q) = %v", tt.name, tt.want, got)
		}
	}
}

// wantMembersOK is checkMembers' rule for claims, computed from
// encoding/json's own tokenizer: the oracle FuzzCheckMembers compares with.
func wantMembersOK(t *testing.T, b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("valid JSON, but Token: %v", err)
		}
		name := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("valid JSON, but Decode: %v", err)
		}
		k := jsonField(t, name)
		if k == "" {
			continue
		}
		if name != k || seen[k] {
			return false
		}
		seen[k] = true
		if k == "exp" || k == "nbf" || k == "iat" {
			if c := v[0]; c != '-' && (c < '0' || c > '9') {
				return false
			}
		}
	}
	return true
}

// claimFields has a field for each of claimNames, as the claims struct
// golang-jwt decodes into does.
type claimFields struct {
	Iss  json.RawMessage `json:"iss"`
	Sub  json.RawMessage `json:"sub"`
	Aud  json.RawMessage `json:"aud"`
	Exp  json.RawMessage `json:"exp"`
	Nbf  json.RawMessage `json:"nbf"`
	Iat  json.RawMessage `json:"iat"`
	Jti  json.RawMessage `json:"jti"`
	Sid  json.RawMessage `json:"sid"`
	Role json.RawMessage `json:"role"`
}

// jsonField is the claim encoding/json decodes a member called name into,
// or "" for none: found by decoding it, not by reimplementing its folding.
func jsonField(t *testing.T, name string) string {
	q, _ := json.Marshal(name)
	var c claimFields
	if err := json.Unmarshal([]byte(`{`+string(q)+`:0}`), &c); err != nil {
		t.Fatalf("decode member %q: %v", name, err)
	}
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		if v.Field(i).Len() > 0 {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			return tag
		}
	}
	return ""
}

func TestClaimFieldsAreClaimNames(t *testing.T) {
	typ := reflect.TypeFor[claimFields]()
	if typ.NumField() != len(claimNames) {
		t.Fatalf("%d fields for %d claim names", typ.NumField(), len(claimNames))
	}
	for i, n := range claimNames {
		if tag := typ.Field(i).Tag.Get("json"); tag != n {
			t.Errorf("field %d is %q, want %q", i, tag, n)
		}
	}
}

// FuzzCheckMembers: on valid JSON, checkMembers' hand-written walk agrees
// with encoding/json about an object's members.
func FuzzCheckMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `[]`, `"x"`, `{"exp":1}`, `{"exp":"1"}`, `{"exp":-1.5e3}`, `{"EXP":1}`, `{"exp":1,"exp":1}`,
		`{"s\u0069d":"x","sid":"y"}`, `{"\u017fub":"x"}`, `{"a":{"exp":"x"},"b":[{"sid":1}],"c":"\"exp\":\"1\""}`,
		`{"sub":"a","x":[[[]]],"y":null,"z":true,"exp" : 2 }`, `{"a":"\\","exp":"1"}`, `{"sid":"\"","sid":1}`,
		"{\"exp\"\n:\t1\r}", `{"nbf":null}`, `{"iat":[1]}`, `{"role":"a","ROLE":"b"}`, `{"x":"é","sub":"ü"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := checkMembers(bytes.Clone(b), claimNames[:], true, checkClaimMember) == nil
		if !json.Valid(b) {
			return // encoding/json refuses it after checkMembers, whatever checkMembers says
		}
		if want := wantMembersOK(t, b); got != want {
			t.Fatalf("checkMembers(%q) ok = %v, encoding/json's members say %v", b, got, want)
		}
	})
}
