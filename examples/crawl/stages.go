package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trimeter-go/trimeter"
)

// A fetched page: its link and its body.
type fetched struct {
	link link
	body []byte
}

// A parsed page: what the store keeps.
type parsed struct {
	Host   string `json:"host"`
	Page   int    `json:"page"`
	Title  string `json:"title"`
	Links  int    `json:"links"`
	Words  int    `json:"words"`
	SHA256 string `json:"sha256"`
}

// fetcher returns the fetch stage's task. A 429 or 503 asks the scheduler,
// through Pushback, to hold off that host for its Retry-After; a 404 is
// marked Permanent, so it is not retried; any other failure may be.
//
// Each request tells the host when the crawler last knew of a pause it
// asked for (pauseReadHeader): when a task handed a 429 or 503 from it
// back to the scheduler, as the task returns, its response closed. So the
// host can tell a request sent during a pause from one that was on its
// way, or started, before the crawler knew of the pause.
func fetcher(client *http.Client) func(context.Context, link) (fetched, error) {
	var mu sync.Mutex
	read := map[string]time.Time{} // by host: when a 429 or 503 was last handed back
	return func(ctx context.Context, l link) (fetched, error) {
		paused := false
		defer func() { // deferred first, so run last: after the response is closed
			if paused {
				mu.Lock()
				read[l.host] = time.Now()
				mu.Unlock()
			}
		}()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url(), nil)
		if err != nil {
			return fetched{}, err
		}
		mu.Lock()
		last := read[l.host]
		mu.Unlock()
		if last.IsZero() {
			last = epoch
		}
		req.Header.Set(pauseReadHeader, strconv.FormatInt(int64(last.Sub(epoch)), 10))
		resp, err := client.Do(req)
		if err != nil {
			return fetched{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return fetched{}, err
		}
		err = fmt.Errorf("%s: %s", l.url(), resp.Status)
		switch resp.StatusCode {
		case http.StatusOK:
			return fetched{l, body}, nil
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			paused = true
			return fetched{}, trimeter.Pushback(retryAfter(resp.Header), err)
		case http.StatusNotFound:
			return fetched{}, trimeter.Permanent(err)
		}
		return fetched{}, err
	}
}

// retryAfter reads a Retry-After header given in seconds; one second when
// it is missing or unreadable.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return time.Second
	}
	return time.Duration(s) * time.Second
}

// parse is the parse stage's task, all CPU: the title, the links, the
// words of the text and a checksum.
func parse(_ context.Context, f fetched) (parsed, error) {
	html := string(f.body)
	_, rest, ok1 := strings.Cut(html, "<title>")
	title, _, ok2 := strings.Cut(rest, "</title>")
	if !ok1 || !ok2 {
		return parsed{}, errors.New(f.link.url() + ": no title")
	}
	sum := sha256.Sum256(f.body)
	return parsed{
		Host:   f.link.host,
		Page:   f.link.page,
		Title:  title,
		Links:  strings.Count(html, "<a href="),
		Words:  len(strings.Fields(text(html))),
		SHA256: hex.EncodeToString(sum[:]),
	}, nil
}

// text returns html without its tags.
func text(html string) string {
	var b strings.Builder
	inTag := false
	for _, r := range html {
		switch {
		case r == '<':
			inTag = true
			b.WriteByte(' ')
		case r == '>':
			inTag = false
		case !inTag:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// A store keeps each parsed page as a JSON file of its own in dir.
type store struct {
	dir string
}

// put is the store stage's task. It fails if the page was stored before.
func (s store) put(_ context.Context, p parsed) (string, error) {
	name := filepath.Join(s.dir, fmt.Sprintf("%s-%04d.json", p.Host, p.Page))
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", err
	}
	if err := json.NewEncoder(f).Encode(p); err != nil {
		f.Close()
		return "", err
	}
	return name, f.Close()
}

// count returns how many pages the store holds.
func (s store) count() (int, error) {
	files, err := os.ReadDir(s.dir)
	return len(files), err
}
