package secrets

import (
	"bytes"
	"fmt"
	"testing"
)

func TestBoxSealsAndOpens(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	b, err := NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"secret":"whsec_c2VjcmV0"}`)
	sealed := b.Seal(plain, []byte("account-1"))
	if bytes.Contains(sealed, plain) || bytes.Contains(sealed, []byte("whsec_")) {
		t.Fatal("sealed value shows the plaintext")
	}
	if again := b.Seal(plain, []byte("account-1")); bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same value are equal: the nonce is not random")
	}
	got, err := b.Open(sealed, []byte("account-1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v", got, err)
	}

	other, _ := NewBox(bytes.Repeat([]byte{8}, 32))
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() ([]byte, error){
		"other context": func() ([]byte, error) { return b.Open(sealed, []byte("account-2")) },
		"other key":     func() ([]byte, error) { return other.Open(sealed, []byte("account-1")) },
		"tampered":      func() ([]byte, error) { return b.Open(tampered, []byte("account-1")) },
		"truncated":     func() ([]byte, error) { return b.Open(sealed[:10], []byte("account-1")) },
		"empty":         func() ([]byte, error) { return b.Open(nil, []byte("account-1")) },
	} {
		if got, err := open(); err != ErrOpen || got != nil {
			t.Errorf("%s: Open = %q, %v; want ErrOpen", name, got, err)
		}
	}
}

func TestBoxNeeds32ByteKeyAndHidesIt(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := NewBox(make([]byte, n)); err == nil {
			t.Errorf("NewBox accepted a %d-byte key", n)
		}
	}
	key := bytes.Repeat([]byte{0xAB}, 32)
	b, _ := NewBox(key)
	if s := fmt.Sprintf("%v %+v %s", b, b, b); bytes.Contains([]byte(s), []byte("abab")) || bytes.Contains([]byte(s), key) {
		t.Fatalf("formatting the box shows the key: %s", s)
	}
}
