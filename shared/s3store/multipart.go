package s3store

// Large objects: exports are written as multipart uploads, a part at a time, so an export far
// larger than a function's memory never exists whole anywhere but in S3; imports read an mbox
// from an offset, so one that outlives an invocation resumes where it stopped.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mailroom/mailroom/shared/export"
	"github.com/mailroom/mailroom/shared/fault"
)

var (
	_ export.Uploads       = (*Store)(nil)
	_ export.ImportObjects = (*Store)(nil)
)

// MinPartSize is S3's smallest part but the last.
const MinPartSize = 5 << 20

// CreateUpload starts a multipart upload of key and returns its id. The object is served with
// contentType and, when filename is set, as a download of that name.
func (s *Store) CreateUpload(ctx context.Context, key, contentType, filename string) (string, error) {
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:             &s.bucket,
		Key:                &key,
		ContentType:        aws.String(contentType),
		ContentDisposition: disposition(filename),
	})
	if err != nil {
		return "", uploadError("s3store.CreateUpload", err)
	}
	return aws.ToString(out.UploadId), nil
}

// UploadPart uploads part number (1 to 10,000) of an upload and returns its ETag. Uploading the
// same number again replaces the part.
func (s *Store) UploadPart(ctx context.Context, key, uploadID string, number int, body []byte) (string, error) {
	out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket:        &s.bucket,
		Key:           &key,
		UploadId:      &uploadID,
		PartNumber:    aws.Int32(int32(number)),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return "", uploadError("s3store.UploadPart", err)
	}
	return aws.ToString(out.ETag), nil
}

// CompleteUpload joins the parts, numbered 1 to len(etags), into the object.
func (s *Store) CompleteUpload(ctx context.Context, key, uploadID string, etags []string) error {
	parts := make([]types.CompletedPart, len(etags))
	for i, e := range etags {
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(e)}
	}
	_, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &s.bucket,
		Key:             &key,
		UploadId:        &uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return uploadError("s3store.CompleteUpload", err)
}

// AbortUpload discards an upload and its parts. An upload already gone is not an error.
func (s *Store) AbortUpload(ctx context.Context, key, uploadID string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: &uploadID,
	})
	if err = uploadError("s3store.AbortUpload", err); fault.Is(err, fault.NotFound) {
		return nil
	}
	return err
}

// PutFile writes a whole object in one request (an export small enough for one part), served
// like CreateUpload's.
func (s *Store) PutFile(ctx context.Context, key string, body []byte, contentType, filename string) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:             &s.bucket,
		Key:                &key,
		Body:               bytes.NewReader(body),
		ContentLength:      aws.Int64(int64(len(body))),
		ContentType:        aws.String(contentType),
		ContentDisposition: disposition(filename),
	})
	return translate("s3store.PutFile", err)
}

// OpenAt returns the object's bytes from offset on, and the object's whole size.
func (s *Store) OpenAt(ctx context.Context, key string, offset int64) (io.ReadCloser, int64, error) {
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key}
	if offset > 0 {
		in.Range = aws.String("bytes=" + strconv.FormatInt(offset, 10) + "-")
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		var api smithy.APIError
		if offset > 0 && errors.As(err, &api) && api.ErrorCode() == "InvalidRange" {
			// Nothing is left past offset: an mbox read to its end.
			return io.NopCloser(bytes.NewReader(nil)), offset, nil
		}
		return nil, 0, translate("s3store.OpenAt", err)
	}
	size := aws.ToInt64(out.ContentLength) + offset
	if cr := aws.ToString(out.ContentRange); cr != "" {
		// "bytes 100-199/200": the whole size follows the slash.
		var from, to, total int64
		if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &from, &to, &total); err == nil {
			size = total
		}
	}
	return out.Body, size, nil
}

// disposition names the file a browser saves the object as.
func disposition(filename string) *string {
	if filename == "" {
		return nil
	}
	return aws.String(mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
}

// uploadError is translate, with a gone upload (aborted, or expired by the bucket's lifecycle
// rule) reported as NotFound.
func uploadError(op string, err error) error {
	var api smithy.APIError
	if err != nil && errors.As(err, &api) && api.ErrorCode() == "NoSuchUpload" {
		return fault.Wrap(fault.NotFound, op, err)
	}
	return translate(op, err)
}
