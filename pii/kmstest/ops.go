package kmstest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
)

const contentType = "application/x-amz-json-1.1"

// blobMagic starts every ciphertext blob the stand-in makes; the key id
// follows, so Decrypt finds the key as KMS does.
const blobMagic = "kmstest1"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		s.fail(w, refuse(400, "SerializationException", "cannot read the request body"))
		return
	}
	out, rf := s.handle(r, body)
	if rf != nil {
		s.fail(w, rf)
		return
	}
	s.header(w)
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) fail(w http.ResponseWriter, rf *refusal) {
	s.mu.Lock()
	s.refused = append(s.refused, rf.typ)
	s.mu.Unlock()
	s.header(w)
	w.WriteHeader(rf.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": rf.typ, "message": rf.msg})
}

// header sets the headers of every answer; Date is the server's clock,
// from which the SDK corrects its own when a signature expired.
func (s *Server) header(w http.ResponseWriter) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
}

func (s *Server) handle(r *http.Request, body []byte) (any, *refusal) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		return nil, refuse(404, "UnknownOperationException", "only POST / is served")
	}
	if ct := r.Header.Get("Content-Type"); ct != contentType {
		return nil, refuse(400, "SerializationException", "Content-Type must be "+contentType+", not "+ct)
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if !ok || !slices.Contains([]string{"Encrypt", "Decrypt", "DescribeKey"}, op) {
		return nil, refuse(400, "UnknownOperationException", "X-Amz-Target "+r.Header.Get("X-Amz-Target")+" is not served")
	}
	if rf := s.verify(r, body); rf != nil {
		return nil, rf
	}
	s.mu.Lock()
	stall := s.stall
	switch {
	case s.throttle > 0:
		s.throttle--
		s.mu.Unlock()
		return nil, refuse(400, "ThrottlingException", "Rate exceeded")
	case s.failing > 0:
		s.failing--
		s.mu.Unlock()
		return nil, refuse(500, "KMSInternalException", "internal error")
	}
	s.mu.Unlock()
	if stall {
		// No answer at all, not even once the client gave up: a late 503
		// would reach a retrying client as the call's last error instead
		// of its deadline.
		<-r.Context().Done()
		panic(http.ErrAbortHandler)
	}
	switch op {
	case "Encrypt":
		return s.encrypt(body)
	case "Decrypt":
		return s.decrypt(body)
	default:
		return s.describe(body)
	}
}

// decode reads body into v strictly: unknown fields are refused.
func decode(body []byte, v any) *refusal {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return refuse(400, "SerializationException", "request body: "+err.Error())
	}
	return nil
}

type encryptIn struct {
	KeyId               string
	Plaintext           []byte
	EncryptionContext   map[string]string
	EncryptionAlgorithm string
	GrantTokens         []string
	DryRun              bool
}

type decryptIn struct {
	CiphertextBlob      []byte
	KeyId               string
	EncryptionContext   map[string]string
	EncryptionAlgorithm string
	GrantTokens         []string
	DryRun              bool
}

func (s *Server) encrypt(body []byte) (any, *refusal) {
	var in encryptIn
	if rf := decode(body, &in); rf != nil {
		return nil, rf
	}
	if len(in.Plaintext) == 0 || len(in.Plaintext) > 4096 {
		return nil, refuse(400, "ValidationException", "Plaintext must be 1 to 4096 bytes")
	}
	if in.EncryptionAlgorithm != "" && in.EncryptionAlgorithm != "SYMMETRIC_DEFAULT" {
		return nil, refuse(400, "InvalidKeyUsageException", "EncryptionAlgorithm not supported by this key")
	}
	k, rf := s.use("Encrypt", in.KeyId, in.KeyId, in.EncryptionContext)
	if rf != nil {
		return nil, rf
	}
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce)
	blob := append([]byte(blobMagic), byte(len(k.id)))
	blob = append(blob, k.id...)
	blob = append(blob, nonce...)
	blob = aead(k).Seal(blob, nonce, in.Plaintext, contextAAD(in.EncryptionContext))
	return map[string]any{"CiphertextBlob": blob, "KeyId": k.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
}

func (s *Server) decrypt(body []byte) (any, *refusal) {
	var in decryptIn
	if rf := decode(body, &in); rf != nil {
		return nil, rf
	}
	blob, ok := bytes.CutPrefix(in.CiphertextBlob, []byte(blobMagic))
	if !ok || len(blob) < 1 || len(blob) < 1+int(blob[0])+12 {
		return nil, refuse(400, "InvalidCiphertextException", "")
	}
	id, rest := string(blob[1:1+int(blob[0])]), blob[1+int(blob[0]):]
	k, rf := s.use("Decrypt", id, in.KeyId, in.EncryptionContext)
	if rf != nil {
		if rf.typ == "NotFoundException" {
			return nil, refuse(400, "InvalidCiphertextException", "")
		}
		return nil, rf
	}
	if in.KeyId != "" {
		want, rf := s.resolve(in.KeyId)
		if rf != nil {
			return nil, rf
		}
		if want.id != k.id {
			return nil, refuse(400, "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
		}
	}
	pt, err := aead(k).Open(nil, rest[:12], rest[12:], contextAAD(in.EncryptionContext))
	if err != nil {
		return nil, refuse(400, "InvalidCiphertextException", "")
	}
	return map[string]any{"Plaintext": pt, "KeyId": k.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, nil
}

func (s *Server) describe(body []byte) (any, *refusal) {
	var in struct {
		KeyId       string
		GrantTokens []string
	}
	if rf := decode(body, &in); rf != nil {
		return nil, rf
	}
	k, rf := s.use("DescribeKey", in.KeyId, in.KeyId, nil)
	if rf != nil {
		return nil, rf
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "Enabled"
	if !k.enabled {
		state = "Disabled"
	}
	return map[string]any{"KeyMetadata": map[string]any{
		"AWSAccountId": Account, "KeyId": k.id, "Arn": k.arn,
		"CreationDate": float64(k.created.UnixMilli()) / 1000, "Enabled": k.enabled,
		"KeyState": state, "KeyUsage": "ENCRYPT_DECRYPT", "KeySpec": "SYMMETRIC_DEFAULT",
		"KeyManager": "CUSTOMER", "Origin": "AWS_KMS", "EncryptionAlgorithms": []string{"SYMMETRIC_DEFAULT"},
	}}, nil
}

// use resolves keyID for op, refusing a denied or (but for DescribeKey)
// disabled key, and records the call with the key the request named.
func (s *Server) use(op, keyID, asked string, ec map[string]string) (*key, *refusal) {
	k, rf := s.resolve(keyID)
	if rf != nil {
		return nil, rf
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k.denied[op] {
		return nil, refuse(400, "AccessDeniedException", "User: arn:aws:sts::"+Account+":assumed-role/test is not authorized to perform: kms:"+op+" on resource: "+k.arn+" because no identity-based policy allows the kms:"+op+" action")
	}
	if !k.enabled && op != "DescribeKey" {
		return nil, refuse(400, "DisabledException", k.arn+" is disabled.")
	}
	s.calls = append(s.calls, Call{Op: op, KeyID: asked, EncryptionContext: maps.Clone(ec)})
	return k, nil
}

// resolve finds a key by key id, key ARN, alias name or alias ARN.
func (s *Server) resolve(keyID string) (*key, *refusal) {
	if keyID == "" {
		return nil, refuse(400, "ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := keyID
	prefix := "arn:aws:kms:" + s.Region + ":" + Account + ":"
	if rest, ok := strings.CutPrefix(id, prefix); ok {
		id = rest
		if kid, ok := strings.CutPrefix(rest, "key/"); ok {
			id = kid
		}
	}
	if strings.HasPrefix(id, "alias/") {
		id = s.aliases[id]
	}
	if k, ok := s.keys[id]; ok {
		return k, nil
	}
	return nil, refuse(400, "NotFoundException", "Key '"+keyID+"' does not exist")
}

func aead(k *key) cipher.AEAD {
	block, err := aes.NewCipher(k.material)
	if err != nil {
		panic(err) // 32 bytes from CreateKey
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

// contextAAD is the encryption context as associated data: sorted keys,
// so the same context in any order opens what it sealed.
func contextAAD(ec map[string]string) []byte {
	if len(ec) == 0 {
		return nil
	}
	b, _ := json.Marshal(ec) // json sorts map keys
	return b
}

func requestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
