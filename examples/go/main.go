// Command archio-example shows that any NATS client is an Archio client: with nothing but the
// Go NATS client (github.com/nats-io/nats.go) and JSON it puts a key, reads it, compares and
// sets it, runs a txn, watches the key's change events, enqueues a job, leases it and acks it
// with its fencing token, on the plain subjects `archio.<cluster>.kv.*` and `.jobs.*` that the
// `nats` CLI uses (README: "Using it: the client API" and "Job queue").
//
// It checks every answer and exits 1 with one clear line on the first one it did not expect,
// 2 on bad usage, and 0 after printing one line per step. The tests (test/examples/go.test.ts)
// build it and run it against a real three-node cluster.
//
//	go run . -nats nats://127.0.0.1:4222 -cluster dev   (see README.md here for the offline build)
package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	natsURL := flag.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (env NATS_URL)")
	cluster := flag.String("cluster", envOr("CLUSTER", "dev"), "cluster name: subjects start with archio.<cluster>. (env CLUSTER)")
	run := randomHex(4)
	key := flag.String("key", "go-example/"+run, "the key to write and watch")
	queue := flag.String("queue", "go-example-"+run, "the job queue to use (a fresh one, so no older job is leased)")
	timeout := flag.Duration("timeout", 15*time.Second, "how long one call may keep retrying")
	flag.Parse()
	if flag.NArg() > 0 {
		usage(fmt.Sprintf("unexpected argument %q", flag.Arg(0)))
	}
	if !tokenPattern.MatchString(*cluster) {
		usage(fmt.Sprintf("-cluster must be 1-64 letters, digits, _ or -, got %q", *cluster))
	}
	if !tokenPattern.MatchString(*queue) {
		usage(fmt.Sprintf("-queue must be 1-64 letters, digits, _ or -, got %q", *queue))
	}
	if *key == "" {
		usage("-key must not be empty")
	}

	nc, err := nats.Connect(*natsURL, nats.Name("archio-go-example"), nats.Timeout(5*time.Second))
	if err != nil {
		fail("cannot connect to NATS at %s: %v", *natsURL, err)
	}
	defer nc.Close()
	c := &client{nc: nc, cluster: *cluster, clientID: "go-example-" + run, deadline: *timeout}
	fmt.Printf("connected to %s, cluster %q\n", nc.ConnectedUrl(), *cluster)

	if err := walkThrough(c, *key, *queue); err != nil {
		fail("%v", err)
	}
	fmt.Println("done: every answer was as expected")
}

// walkThrough does each step in turn and returns the first answer it did not expect.
func walkThrough(c *client, key, queue string) error {
	// kv.put, with an idempotency token: a retry after a lost reply is never applied twice.
	var put kvWriteReply
	if err := c.call("kv.put", map[string]any{"key": key, "value": "hello", "token": c.nextToken()}, &put); err != nil {
		return err
	}
	if put.Key != key || put.Revision == 0 || put.Node == "" {
		return fmt.Errorf("kv.put answered %+v, expected key %q with a revision and the node", put, key)
	}
	fmt.Printf("put %s = %q: revision %d (node %s)\n", key, "hello", put.Revision, put.Node)

	// kv.get: linearizable by default, from whichever node takes the request.
	var got kvGetReply
	if err := c.call("kv.get", map[string]any{"key": key}, &got); err != nil {
		return err
	}
	if got.Value != "hello" || got.ModRevision != put.Revision || got.Version != 1 {
		return fmt.Errorf("kv.get answered %+v, expected value \"hello\" at mod revision %d, version 1", got, put.Revision)
	}
	fmt.Printf("get %s = %q: mod revision %d, version %d (%s, node %s)\n", key, got.Value, got.ModRevision, got.Version, got.Consistency, got.Node)

	// kv.cas: write only if the key is still at the revision we read.
	var cas kvWriteReply
	if err := c.call("kv.cas", map[string]any{"key": key, "value": "hello again", "expectedRevision": got.ModRevision, "token": c.nextToken()}, &cas); err != nil {
		return err
	}
	if cas.Revision <= put.Revision || cas.PrevRevision == nil || *cas.PrevRevision != put.Revision {
		return fmt.Errorf("kv.cas answered %+v, expected a revision above %d and prevRevision %d", cas, put.Revision, put.Revision)
	}
	fmt.Printf("cas %s = %q if at revision %d: revision %d\n", key, "hello again", got.ModRevision, cas.Revision)

	// The same cas again is stale now: refused with `conflict` and the key's revision in detail.
	err := c.call("kv.cas", map[string]any{"key": key, "value": "too late", "expectedRevision": got.ModRevision, "token": c.nextToken()}, &kvWriteReply{})
	current, isConflict := conflictRevision(err)
	if !isConflict || current != cas.Revision {
		return fmt.Errorf("a stale kv.cas should fail with conflict at revision %d, got %v", cas.Revision, err)
	}
	fmt.Printf("cas %s if at revision %d: refused, conflict (the key is at revision %d)\n", key, got.ModRevision, current)

	// kv.txn: both puts apply at one revision only if the key is unchanged since the cas.
	txnKey := key + "-txn"
	var txn kvTxnReply
	txnReq := map[string]any{
		"compare": []any{map[string]any{"key": key, "target": "mod", "op": "==", "value": cas.Revision}},
		"success": []any{
			map[string]any{"op": "put", "key": key, "value": "set by txn"},
			map[string]any{"op": "put", "key": txnKey, "value": "written with it"},
		},
		"failure": []any{},
		"token":   c.nextToken(),
	}
	if err := c.call("kv.txn", txnReq, &txn); err != nil {
		return err
	}
	if !txn.Succeeded || txn.Revision <= cas.Revision {
		return fmt.Errorf("kv.txn answered %+v, expected succeeded with a revision above %d", txn, cas.Revision)
	}
	fmt.Printf("txn if %s is at revision %d: put %s and %s, succeeded, revision %d\n", key, cas.Revision, key, txnKey, txn.Revision)

	if err := watch(c, key, txn.Revision); err != nil {
		return err
	}
	return jobs(c, queue)
}

// watch subscribes to the key's change events, makes a change, and waits for its event.
func watch(c *client, key string, after uint64) error {
	subject := kvKeyEvent(c.cluster, key)
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		return fmt.Errorf("cannot subscribe to %s: %v", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Flush: once the server has answered our PING it holds the subscription, so the event of
	// the put below cannot be published before it.
	if err := c.nc.Flush(); err != nil {
		return fmt.Errorf("cannot flush the subscription to %s: %v", subject, err)
	}
	fmt.Printf("watch %s on %s\n", key, subject)

	var put kvWriteReply
	if err := c.call("kv.put", map[string]any{"key": key, "value": "watched", "token": c.nextToken()}, &put); err != nil {
		return err
	}
	if put.Revision <= after {
		return fmt.Errorf("kv.put answered revision %d, expected one above %d", put.Revision, after)
	}
	for {
		msg, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			return fmt.Errorf("no change event for %s on %s after the put at revision %d: %v", key, subject, put.Revision, err)
		}
		var ev kvEvent
		if err := json.Unmarshal(msg.Data, &ev); err != nil {
			return fmt.Errorf("a change event on %s is not JSON: %v: %s", subject, err, msg.Data)
		}
		if ev.Key != key {
			return fmt.Errorf("an event for key %q arrived on %s, the subject of %q", ev.Key, subject, key)
		}
		// Events come once each, in revision order; an older one may still be on its way.
		if ev.Revision < put.Revision {
			continue
		}
		if ev.Type != "put" || ev.Revision != put.Revision || ev.Value == nil || *ev.Value != "watched" {
			return fmt.Errorf("expected the event of the put at revision %d, got %s", put.Revision, msg.Data)
		}
		fmt.Printf("event %s %s = %q at revision %d\n", ev.Type, ev.Key, *ev.Value, ev.Revision)
		return nil
	}
}

// jobs enqueues one job, leases it, shows that a stale fencing token cannot ack it, acks it
// with the lease's token and reads it back as completed.
func jobs(c *client, queue string) error {
	var enq enqueueReply
	// retainMs: the finished job is removed after a minute instead of the default seven days.
	enqReq := map[string]any{"queue": queue, "payload": map[string]any{"to": "a@b.c"}, "maxAttempts": 3, "retainMs": 60000, "token": c.nextToken()}
	if err := c.call("jobs.enqueue", enqReq, &enq); err != nil {
		return err
	}
	if enq.ID == "" || enq.Existing {
		return fmt.Errorf("jobs.enqueue answered %+v, expected a new job id", enq)
	}
	fmt.Printf("enqueue job %s on queue %s: revision %d\n", enq.ID, queue, enq.Revision)

	// jobs.lease waits up to waitMs for a ready job. It is not retried after a lost reply (a
	// retry could lease a second job); the lease would simply run out.
	var lease leaseReply
	if err := c.callOnce("jobs.lease", map[string]any{"queues": []string{queue}, "workerId": c.clientID, "max": 1, "leaseMs": 30000, "waitMs": 5000}, &lease); err != nil {
		return err
	}
	if len(lease.Jobs) != 1 || lease.Jobs[0].ID != enq.ID || lease.Jobs[0].Attempt != 1 {
		return fmt.Errorf("jobs.lease answered %+v, expected job %s at attempt 1", lease, enq.ID)
	}
	job := lease.Jobs[0]
	if job.Payload["to"] != "a@b.c" {
		return fmt.Errorf("the leased job carries payload %v, expected {\"to\":\"a@b.c\"}", job.Payload)
	}
	fmt.Printf("lease job %s: attempt %d, fencing token %d, lease until %s\n", job.ID, job.Attempt, job.Token, time.UnixMilli(int64(job.LeaseUntil)).UTC().Format(time.RFC3339))

	// A worker holding an older lease (a smaller token) cannot ack: lease_lost, nothing changes.
	stale := job.Token + 1
	if job.Token > 0 {
		stale = job.Token - 1
	}
	err := c.callOnce("jobs.ack", map[string]any{"id": job.ID, "token": stale}, &jobWriteReply{})
	var refused *apiError
	if !errors.As(err, &refused) || refused.Code != "lease_lost" {
		return fmt.Errorf("an ack with token %d should fail with lease_lost, got %v", stale, err)
	}
	fmt.Printf("ack job %s with token %d: refused, lease_lost\n", job.ID, stale)

	var ack jobWriteReply
	if err := c.callOnce("jobs.ack", map[string]any{"id": job.ID, "token": job.Token, "result": map[string]any{"sent": true}}, &ack); err != nil {
		return err
	}
	fmt.Printf("ack job %s with token %d: revision %d\n", job.ID, job.Token, ack.Revision)

	var view jobGetReply
	if err := c.call("jobs.get", map[string]any{"id": job.ID}, &view); err != nil {
		return err
	}
	if view.Job.State != "completed" || view.Job.Result["sent"] != true {
		return fmt.Errorf("jobs.get answered %+v, expected the job completed with result {\"sent\":true}", view.Job)
	}
	fmt.Printf("job %s is %s after %d attempt(s)\n", job.ID, view.Job.State, view.Job.Attempts)
	return nil
}

// ---------------------------------------------------------------------------------------------
// Requests

type client struct {
	nc       *nats.Conn
	cluster  string
	clientID string
	seq      int
	deadline time.Duration
}

// nextToken is the idempotency token of the next write: one client id, seq counting up from 1,
// one write in flight at a time.
func (c *client) nextToken() map[string]any {
	c.seq++
	return map[string]any{"client": c.clientID, "seq": c.seq}
}

// apiError is an error reply: {"ok":false,"error":{"code","message","detail"?}}, with the
// Services API headers Nats-Service-Error-Code and Nats-Service-Error.
type apiError struct {
	Op      string
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Detail  map[string]any `json:"detail"`
}

func (e *apiError) Error() string { return fmt.Sprintf("%s failed: %s: %s", e.Op, e.Code, e.Message) }

// conflictRevision is the key's current revision from a `conflict` error (detail.revision).
func conflictRevision(err error) (uint64, bool) {
	var e *apiError
	if !errors.As(err, &e) || e.Code != "conflict" {
		return 0, false
	}
	r, ok := e.Detail["revision"].(float64)
	return uint64(r), ok
}

// call sends a request that is safe to repeat (a read, or a write carrying its idempotency
// token) and retries it with backoff while the cluster cannot answer: no node subscribed yet,
// no reply within a second (core NATS drops messages), `unavailable` (an election) or `busy`.
func (c *client) call(op string, req any, out any) error {
	return c.send(op, req, out, true)
}

// callOnce sends a request whose repeat could do something twice; it is retried only when no
// node received it (no responders).
func (c *client) callOnce(op string, req any, out any) error {
	return c.send(op, req, out, false)
}

func (c *client) send(op string, req any, out any, repeatable bool) error {
	subject := fmt.Sprintf("archio.%s.%s", c.cluster, op)
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: cannot encode the request: %v", op, err)
	}
	giveUp := time.Now().Add(c.deadline)
	pause := 50 * time.Millisecond
	for {
		// A lease may wait up to its waitMs before answering; other calls answer within ms.
		msg, err := c.nc.Request(subject, body, 10*time.Second)
		retry := false
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			retry = true
		case errors.Is(err, nats.ErrTimeout):
			retry = repeatable
		case err != nil:
			return fmt.Errorf("%s: %v", op, err)
		default:
			e, decodeErr := decodeReply(op, msg, out)
			if decodeErr != nil {
				return decodeErr
			}
			if e == nil {
				return nil
			}
			if !(repeatable && (e.Code == "unavailable" || e.Code == "busy")) {
				return e
			}
			err = e
			retry = true
		}
		if !retry || time.Now().Add(pause).After(giveUp) {
			return fmt.Errorf("%s on %s: %w (gave up after %s)", op, subject, err, c.deadline)
		}
		time.Sleep(pause)
		if pause < time.Second {
			pause *= 2
		}
	}
}

// decodeReply decodes a success into out, or returns the error reply, checking that its
// headers and body agree.
func decodeReply(op string, msg *nats.Msg, out any) (*apiError, error) {
	var envelope struct {
		OK    *bool     `json:"ok"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &envelope); err != nil || envelope.OK == nil {
		return nil, fmt.Errorf("%s answered something that is not an Archio reply: %q", op, msg.Data)
	}
	if *envelope.OK {
		if err := json.Unmarshal(msg.Data, out); err != nil {
			return nil, fmt.Errorf("%s answered a reply of the wrong shape: %v: %s", op, err, msg.Data)
		}
		return nil, nil
	}
	if envelope.Error == nil || envelope.Error.Code == "" {
		return nil, fmt.Errorf("%s answered ok:false without an error code: %s", op, msg.Data)
	}
	if msg.Header.Get("Nats-Service-Error-Code") == "" || msg.Header.Get("Nats-Service-Error") == "" {
		return nil, fmt.Errorf("%s answered an error without the Services API headers: %s", op, msg.Data)
	}
	envelope.Error.Op = op
	return envelope.Error, nil
}

// ---------------------------------------------------------------------------------------------
// Replies: only the fields this program reads (replies may grow; unknown fields are ignored).

type kvWriteReply struct {
	Key          string  `json:"key"`
	Revision     uint64  `json:"revision"`
	PrevRevision *uint64 `json:"prevRevision"`
	Node         string  `json:"node"`
}

type kvGetReply struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ModRevision uint64 `json:"modRevision"`
	Version     uint64 `json:"version"`
	Consistency string `json:"consistency"`
	Node        string `json:"node"`
}

type kvTxnReply struct {
	Succeeded bool   `json:"succeeded"`
	Revision  uint64 `json:"revision"`
}

type kvEvent struct {
	Type     string  `json:"type"`
	Key      string  `json:"key"`
	Revision uint64  `json:"revision"`
	Value    *string `json:"value"`
}

type enqueueReply struct {
	ID       string `json:"id"`
	Existing bool   `json:"existing"`
	Revision uint64 `json:"revision"`
}

type leaseReply struct {
	Jobs []struct {
		ID         string         `json:"id"`
		Payload    map[string]any `json:"payload"`
		Attempt    int            `json:"attempt"`
		Token      uint64         `json:"token"`
		LeaseUntil uint64         `json:"leaseUntil"`
	} `json:"jobs"`
}

type jobWriteReply struct {
	Revision uint64 `json:"revision"`
}

type jobGetReply struct {
	Job struct {
		State    string         `json:"state"`
		Attempts int            `json:"attempts"`
		Result   map[string]any `json:"result"`
	} `json:"job"`
}

// ---------------------------------------------------------------------------------------------
// Subjects (protocol/subjects.ts)

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
var plainSegment = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// kvKeyEvent is the subject a change to key is published on: each "/"-separated segment is one
// token, kept as it is when plain, else "~" and the unpadded base64url of its UTF-8 bytes.
func kvKeyEvent(cluster, key string) string {
	segments := strings.Split(key, "/")
	for i, s := range segments {
		if !plainSegment.MatchString(s) {
			segments[i] = "~" + base64.RawURLEncoding.EncodeToString([]byte(s))
		}
	}
	return fmt.Sprintf("archio.%s.events.kv.%s", cluster, strings.Join(segments, "."))
}

// ---------------------------------------------------------------------------------------------
// Small helpers

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		fail("no randomness: %v", err)
	}
	return hex.EncodeToString(b)
}

func usage(problem string) {
	fmt.Fprintf(os.Stderr, "archio-example: %s (see -help)\n", problem)
	os.Exit(2)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "archio-example: "+format+"\n", args...)
	os.Exit(1)
}
