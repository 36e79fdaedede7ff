package limiter

import (
	"sync/atomic"
	"testing"
)

// BenchmarkBucketAllow: one goroutine, the clock advancing 10ns per call
// on a bucket refilling at 5e7/s, so about half the calls are admitted.
func BenchmarkBucketAllow(b *testing.B) {
	bk := NewBucket(5e7, 100)
	now := t0
	admitted := 0
	b.ReportAllocs()
	for b.Loop() {
		now += 10
		if ok, _ := bk.Allow(now); ok {
			admitted++
		}
	}
	b.ReportMetric(float64(admitted)/float64(b.N), "admitted/op")
}

// BenchmarkBucketAllowParallel: every goroutine advances its own clock
// reading 10ns per call. "shared" hammers one bucket (one hot key);
// "per-goroutine" gives each goroutine its own bucket (many keys).
func BenchmarkBucketAllowParallel(b *testing.B) {
	b.Run("shared", func(b *testing.B) {
		bk := NewBucket(5e7, 100)
		var admitted atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			now := t0
			n := int64(0)
			for pb.Next() {
				now += 10
				if ok, _ := bk.Allow(now); ok {
					n++
				}
			}
			admitted.Add(n)
		})
		b.ReportMetric(float64(admitted.Load())/float64(b.N), "admitted/op")
	})
	b.Run("per-goroutine", func(b *testing.B) {
		var admitted atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			bk := NewBucket(5e7, 100)
			now := t0
			n := int64(0)
			for pb.Next() {
				now += 10
				if ok, _ := bk.Allow(now); ok {
					n++
				}
			}
			admitted.Add(n)
		})
		b.ReportMetric(float64(admitted.Load())/float64(b.N), "admitted/op")
	})
}
