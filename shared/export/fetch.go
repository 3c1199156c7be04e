package export

import (
	"context"
	"io"
	"sync"
)

// fetcher opens originals ahead of the writer, in order, at most n at a time. Each open waits
// for S3's first byte; overlapping those waits is most of an export's speed. An opened body waits
// unread (in the connection, not in this process's memory) until the writer reaches it.
type fetcher struct {
	ctx     context.Context
	cancel  context.CancelFunc
	objects Objects
	slots   chan struct{}
	pending []*fetch
	wg      sync.WaitGroup
}

type fetch struct {
	key   string
	body  io.ReadCloser
	err   error
	ready chan struct{}
}

func newFetcher(ctx context.Context, objects Objects, n int) *fetcher {
	ctx, cancel := context.WithCancel(ctx)
	return &fetcher{ctx: ctx, cancel: cancel, objects: objects, slots: make(chan struct{}, max(n, 1))}
}

// add queues keys to open. Slots are taken in the order of the keys, so the writer never waits
// for a key that a later key's open keeps from starting.
func (f *fetcher) add(keys []string) {
	batch := make([]*fetch, len(keys))
	for i, k := range keys {
		batch[i] = &fetch{key: k, ready: make(chan struct{})}
	}
	f.pending = append(f.pending, batch...)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for _, ft := range batch {
			select {
			case f.slots <- struct{}{}:
			case <-f.ctx.Done():
				ft.err = f.ctx.Err()
				close(ft.ready)
				continue
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				ft.body, _, ft.err = f.objects.Open(f.ctx, ft.key)
				if ft.err != nil {
					<-f.slots
				}
				close(ft.ready)
			}()
		}
	}()
}

// next returns the body of the next queued key; closing it frees its slot.
func (f *fetcher) next() (io.ReadCloser, error) {
	ft := f.pending[0]
	f.pending = f.pending[1:]
	<-ft.ready
	if ft.err != nil {
		return nil, ft.err
	}
	return &slotBody{ReadCloser: ft.body, release: func() { <-f.slots }}, nil
}

// close stops the opens still to come and closes the bodies nobody will read.
func (f *fetcher) close() {
	f.cancel()
	for _, ft := range f.pending {
		<-ft.ready
		if ft.body != nil {
			ft.body.Close()
			<-f.slots
		}
	}
	f.pending = nil
	f.wg.Wait()
}

type slotBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}
