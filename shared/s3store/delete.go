package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mailroom/mailroom/shared/fault"
	"github.com/mailroom/mailroom/shared/retention"
)

var _ retention.Objects = (*Store)(nil)

// maxDeleteObjects is S3's limit on keys in one DeleteObjects request.
const maxDeleteObjects = 1000

// DeleteVersions deletes every version and delete marker of each key: the bucket is versioned,
// and deleting a key without its versions would only hide the bytes behind a delete marker. It
// lists the versions of each folder the keys are in (one request per 1,000 versions there, or
// one for a key alone in its folder) and deletes them with DeleteObjects, 1,000 a request.
//
// It never bypasses Object Lock. A version S3 refuses to delete because of a retention period
// (governance or compliance mode) or an S3 legal hold is left, and its key reported Locked, with
// the date the retention ends; the other versions of that key are deleted all the same, so the
// key is tried again, whole, once the lock ends. Any other refusal is an error.
func (s *Store) DeleteVersions(ctx context.Context, keys []string) (map[string]retention.ObjectResult, error) {
	const op = "s3store.DeleteVersions"
	out := make(map[string]retention.ObjectResult, len(keys))
	folders := map[string][]string{}
	for _, k := range keys {
		if _, seen := out[k]; seen {
			continue
		}
		out[k] = retention.ObjectResult{}
		dir := path.Dir(k) + "/"
		folders[dir] = append(folders[dir], k)
	}
	var ids []types.ObjectIdentifier
	for dir, ks := range folders {
		found, err := s.versions(ctx, dir, ks)
		if err != nil {
			return nil, err
		}
		ids = append(ids, found...)
	}
	for chunk := range slices.Chunk(ids, maxDeleteObjects) {
		res, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &s.bucket,
			Delete: &types.Delete{Objects: chunk, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return nil, translate(op, err)
		}
		refused := map[string]bool{} // key and version
		for _, e := range res.Errors {
			switch aws.ToString(e.Code) {
			case "NoSuchKey", "NoSuchVersion":
				// Gone already: what deleting wanted.
			case "AccessDenied":
				refused[aws.ToString(e.Key)+"\x00"+aws.ToString(e.VersionId)] = true
				until, err := s.lockedUntil(ctx, aws.ToString(e.Key), aws.ToString(e.VersionId))
				if err != nil {
					return nil, err
				}
				r := out[aws.ToString(e.Key)]
				if !r.Locked || (!until.IsZero() && (r.LockedUntil.IsZero() || until.After(r.LockedUntil))) {
					r.LockedUntil = until
				}
				r.Locked = true
				out[aws.ToString(e.Key)] = r
			default:
				return nil, fault.New(deleteErrorKind(aws.ToString(e.Code)), op, "%s version %s: %s %s",
					aws.ToString(e.Key), aws.ToString(e.VersionId), aws.ToString(e.Code), aws.ToString(e.Message))
			}
		}
		for _, id := range chunk {
			if refused[aws.ToString(id.Key)+"\x00"+aws.ToString(id.VersionId)] {
				continue
			}
			r := out[aws.ToString(id.Key)]
			r.Versions = append(r.Versions, aws.ToString(id.VersionId))
			out[aws.ToString(id.Key)] = r
		}
	}
	return out, nil
}

// deleteErrorKind classifies the error S3 gives one key of a DeleteObjects request.
func deleteErrorKind(code string) fault.Kind {
	switch code {
	case "SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout":
		return fault.Transient
	}
	return fault.Internal
}

// versions lists the versions and delete markers of keys, all in folder dir: the key itself when
// it is alone, else the folder from its first key to its last.
func (s *Store) versions(ctx context.Context, dir string, keys []string) ([]types.ObjectIdentifier, error) {
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	prefix, last := dir, slices.Max(keys)
	if len(keys) == 1 {
		prefix = keys[0]
	}
	var out []types.ObjectIdentifier
	p := s3.NewListObjectVersionsPaginator(s.client, &s3.ListObjectVersionsInput{Bucket: &s.bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, translate("s3store.DeleteVersions", err)
		}
		past := false
		for _, v := range page.Versions {
			if want[aws.ToString(v.Key)] {
				out = append(out, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
			}
			past = past || aws.ToString(v.Key) > last
		}
		for _, m := range page.DeleteMarkers {
			if want[aws.ToString(m.Key)] {
				out = append(out, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
			}
			past = past || aws.ToString(m.Key) > last
		}
		// Versions are listed in key order: past the last key, nothing more is wanted.
		if past {
			break
		}
	}
	return out, nil
}

// lockedUntil asks why S3 refused to delete a version: a retention period (its end), or an S3
// legal hold (no end). A refusal with neither is not Object Lock but a missing permission, and
// an error.
func (s *Store) lockedUntil(ctx context.Context, key, version string) (time.Time, error) {
	const op = "s3store.DeleteVersions"
	ret, err := s.client.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: &s.bucket, Key: &key, VersionId: &version})
	if err != nil && !noLock(err) {
		return time.Time{}, translate(op, err)
	}
	if err == nil && ret.Retention != nil && ret.Retention.RetainUntilDate != nil && ret.Retention.RetainUntilDate.After(time.Now()) {
		return ret.Retention.RetainUntilDate.UTC(), nil
	}
	hold, err := s.client.GetObjectLegalHold(ctx, &s3.GetObjectLegalHoldInput{Bucket: &s.bucket, Key: &key, VersionId: &version})
	if err != nil && !noLock(err) {
		return time.Time{}, translate(op, err)
	}
	if err == nil && hold.LegalHold != nil && hold.LegalHold.Status == types.ObjectLockLegalHoldStatusOn {
		return time.Time{}, nil
	}
	return time.Time{}, fault.New(fault.Internal, op, "S3 refused to delete %s version %s (AccessDenied) and it is under no Object Lock: check the function's permissions", key, version)
}

// noLock reports an error S3 gives when a version has no retention or legal hold configured.
func noLock(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError", "InvalidRequest":
		return true
	}
	return false
}

// FirstDay finds the first UTC day with an archived original under prefix, whose keys are
// <prefix>YYYY/MM/DD/<id>.eml (archive.Service.Key): the first year, month and day folders in
// key order, three listings in all. It lets a full retention pass start where the archive does
// rather than at an arbitrary date, so no day partition before it is read for nothing.
func (s *Store) FirstDay(ctx context.Context, prefix string) (time.Time, bool, error) {
	var parts [3]int
	found, err := s.firstFolder(ctx, prefix, parts[:], 0)
	if err != nil || !found {
		return time.Time{}, false, err
	}
	return time.Date(parts[0], time.Month(parts[1]), parts[2], 0, 0, 0, 0, time.UTC), true, nil
}

// firstFolder descends the year, month and day folders under prefix in order, taking the first
// that parses and holds anything further down.
func (s *Store) firstFolder(ctx context.Context, prefix string, parts []int, level int) (bool, error) {
	if level == len(parts) {
		return true, nil
	}
	width := []int{4, 2, 2}[level]
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix, Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return false, translate("s3store.FirstDay", err)
		}
		for _, cp := range page.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			n, err := strconv.Atoi(name)
			if err != nil || len(name) != width || n < 1 {
				continue // not a date folder
			}
			parts[level] = n
			found, err := s.firstFolder(ctx, aws.ToString(cp.Prefix), parts, level+1)
			if err != nil || found {
				return found, err
			}
		}
	}
	return false, nil
}

// PutReport writes a report (JSON) at key.
func (s *Store) PutReport(ctx context.Context, key string, body []byte) error {
	contentType := "application/json"
	if strings.HasSuffix(key, ".jsonl") {
		contentType = "application/x-ndjson"
	}
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.bucket, Key: &key, Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: &contentType,
	})
	if err != nil {
		return translate("s3store.PutReport", fmt.Errorf("%s: %w", key, err))
	}
	return nil
}
