package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	cfndynamodb "github.com/awslabs/goformation/v7/cloudformation/dynamodb"
	cfns3 "github.com/awslabs/goformation/v7/cloudformation/s3"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mailroom/mailroom/shared/awsclient"
)

const (
	typeTable  = "AWS::DynamoDB::Table"
	typeBucket = "AWS::S3::Bucket"
)

// Template is the project's SAM template, read so that local tables and buckets are defined
// exactly as deployed.
//
// goformation.Open cannot be used: it decodes every resource strictly, and its SAM schema lacks
// properties the template uses (Function LoggingConfig). Instead goformation's intrinsics
// processor turns the YAML short forms (!Ref, !Sub, !GetAtt) into values (parameters take their
// defaults; references to resources become null, which no table or bucket property here needs),
// and only the resources asked for are decoded into goformation's CloudFormation types, leniently,
// so a property newer than goformation does not stop the stack.
type Template struct {
	path      string
	resources map[string]templateResource
}

type templateResource struct {
	Type       string
	Properties json.RawMessage
}

// LoadTemplate reads and resolves a CloudFormation or SAM template.
func LoadTemplate(path string) (*Template, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load template: %w", err)
	}
	resolved, err := intrinsics.ProcessYAML(b, nil)
	if err != nil {
		return nil, fmt.Errorf("load template %s: %w", path, err)
	}
	var doc struct {
		Resources map[string]templateResource
	}
	if err := json.Unmarshal(resolved, &doc); err != nil {
		return nil, fmt.Errorf("load template %s: %w", path, err)
	}
	return &Template{path: path, resources: doc.Resources}, nil
}

// decode reads the Properties of logicalID, which must be of type typ, into v.
func (t *Template) decode(logicalID, typ string, v any) error {
	r, ok := t.resources[logicalID]
	if !ok {
		return fmt.Errorf("%s: no resource %s", t.path, logicalID)
	}
	if r.Type != typ {
		return fmt.Errorf("%s: resource %s is %s, not %s", t.path, logicalID, r.Type, typ)
	}
	if len(r.Properties) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Properties, v); err != nil {
		return fmt.Errorf("%s: resource %s: %w", t.path, logicalID, err)
	}
	return nil
}

// Table returns the CloudFormation definition of a table.
func (t *Template) Table(logicalID string) (*cfndynamodb.Table, error) {
	// The conversion drops Table's strict UnmarshalJSON; see Template.
	type lenient cfndynamodb.Table
	var tb lenient
	if err := t.decode(logicalID, typeTable, &tb); err != nil {
		return nil, err
	}
	return (*cfndynamodb.Table)(&tb), nil
}

// Bucket returns the CloudFormation definition of a bucket.
func (t *Template) Bucket(logicalID string) (*cfns3.Bucket, error) {
	type lenient cfns3.Bucket
	var b lenient
	if err := t.decode(logicalID, typeBucket, &b); err != nil {
		return nil, err
	}
	return (*cfns3.Bucket)(&b), nil
}

// Create creates the table or bucket that logicalID defines, whichever it is.
func (t *Template) Create(ctx context.Context, c awsclient.Clients, logicalID, name string) error {
	r, ok := t.resources[logicalID]
	if !ok {
		return fmt.Errorf("%s: no resource %s", t.path, logicalID)
	}
	switch r.Type {
	case typeTable:
		return t.CreateTable(ctx, c.DynamoDB, logicalID, name)
	case typeBucket:
		return t.CreateBucket(ctx, c.S3, logicalID, name)
	default:
		return fmt.Errorf("%s: resource %s is %s; the local stack creates only %s and %s",
			t.path, logicalID, r.Type, typeTable, typeBucket)
	}
}

// CreateTable creates table name as logicalID defines it: keys, attributes, secondary indexes with
// their projections, billing mode, streams and time to live. An existing table is kept (a
// persisted dev stack restarts with its data), given indexes the template has added since, and
// checked against the template so that a changed key schema is reported instead of misbehaving.
//
// Not applied locally: DeletionProtectionEnabled (tests and developers must be able to drop
// tables), PointInTimeRecoverySpecification, SSESpecification, ContributorInsights, Kinesis
// streams, table class, tags, resource policies and imports, which DynamoDB Local either lacks or
// which change nothing about how the table behaves for Mailroom's code.
func (t *Template) CreateTable(ctx context.Context, ddb *dynamodb.Client, logicalID, name string) error {
	def, err := t.Table(logicalID)
	if err != nil {
		return err
	}
	in := createTableInput(def, name)
	_, err = ddb.CreateTable(ctx, in)
	var inUse *ddbtypes.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		if err := reconcileTable(ctx, ddb, in); err != nil {
			return fmt.Errorf("table %s (%s): %w", name, logicalID, err)
		}
	case err != nil:
		return fmt.Errorf("create table %s (%s): %w", name, logicalID, err)
	}
	if err := waitActive(ctx, ddb, name); err != nil {
		return fmt.Errorf("create table %s (%s): %w", name, logicalID, err)
	}
	if ttl := def.TimeToLiveSpecification; ttl != nil && ttl.Enabled && ttl.AttributeName != nil {
		if err := ensureTTL(ctx, ddb, name, *ttl.AttributeName); err != nil {
			return fmt.Errorf("table %s (%s): %w", name, logicalID, err)
		}
	}
	return nil
}

func createTableInput(def *cfndynamodb.Table, name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{TableName: aws.String(name)}
	for _, a := range def.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: ddbtypes.ScalarAttributeType(a.AttributeType),
		})
	}
	in.KeySchema = keySchema(def.KeySchema)
	// CloudFormation's default billing mode is PROVISIONED, as is the API's.
	provisioned := def.BillingMode == nil || *def.BillingMode == string(ddbtypes.BillingModeProvisioned)
	if def.BillingMode != nil {
		in.BillingMode = ddbtypes.BillingMode(*def.BillingMode)
	}
	if provisioned {
		in.ProvisionedThroughput = throughput(def.ProvisionedThroughput)
	}
	for _, g := range def.GlobalSecondaryIndexes {
		gsi := ddbtypes.GlobalSecondaryIndex{
			IndexName:  aws.String(g.IndexName),
			KeySchema:  keySchema(g.KeySchema),
			Projection: projection(g.Projection),
		}
		if provisioned {
			gsi.ProvisionedThroughput = throughput(g.ProvisionedThroughput)
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	for _, l := range def.LocalSecondaryIndexes {
		in.LocalSecondaryIndexes = append(in.LocalSecondaryIndexes, ddbtypes.LocalSecondaryIndex{
			IndexName:  aws.String(l.IndexName),
			KeySchema:  keySchema(l.KeySchema),
			Projection: projection(l.Projection),
		})
	}
	if s := def.StreamSpecification; s != nil && s.StreamViewType != "" {
		in.StreamSpecification = &ddbtypes.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: ddbtypes.StreamViewType(s.StreamViewType),
		}
	}
	return in
}

func keySchema(ks []cfndynamodb.Table_KeySchema) []ddbtypes.KeySchemaElement {
	out := make([]ddbtypes.KeySchemaElement, 0, len(ks))
	for _, k := range ks {
		out = append(out, ddbtypes.KeySchemaElement{
			AttributeName: aws.String(k.AttributeName),
			KeyType:       ddbtypes.KeyType(k.KeyType),
		})
	}
	return out
}

func projection(p *cfndynamodb.Table_Projection) *ddbtypes.Projection {
	// CloudFormation's default projection, as the API's, is KEYS_ONLY.
	out := &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeKeysOnly}
	if p == nil {
		return out
	}
	if p.ProjectionType != nil {
		out.ProjectionType = ddbtypes.ProjectionType(*p.ProjectionType)
	}
	out.NonKeyAttributes = p.NonKeyAttributes
	return out
}

func throughput(p *cfndynamodb.Table_ProvisionedThroughput) *ddbtypes.ProvisionedThroughput {
	if p == nil {
		// CloudFormation requires it for PROVISIONED; DynamoDB Local ignores the numbers.
		return &ddbtypes.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(5)}
	}
	return &ddbtypes.ProvisionedThroughput{
		ReadCapacityUnits:  aws.Int64(int64(p.ReadCapacityUnits)),
		WriteCapacityUnits: aws.Int64(int64(p.WriteCapacityUnits)),
	}
}

// reconcileTable compares an existing table with its definition: global secondary indexes that
// the template added are created; any other difference is an error that says how to start over.
func reconcileTable(ctx context.Context, ddb *dynamodb.Client, want *dynamodb.CreateTableInput) error {
	out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: want.TableName})
	if err != nil {
		return err
	}
	have := out.Table
	var diffs []string
	if keysString(have.KeySchema) != keysString(want.KeySchema) {
		diffs = append(diffs, fmt.Sprintf("key schema is %s, template says %s", keysString(have.KeySchema), keysString(want.KeySchema)))
	}
	haveLSI := map[string]string{}
	for _, l := range have.LocalSecondaryIndexes {
		haveLSI[aws.ToString(l.IndexName)] = indexString(l.KeySchema, l.Projection)
	}
	wantLSI := map[string]string{}
	for _, l := range want.LocalSecondaryIndexes {
		wantLSI[aws.ToString(l.IndexName)] = indexString(l.KeySchema, l.Projection)
	}
	if fmt.Sprint(haveLSI) != fmt.Sprint(wantLSI) {
		diffs = append(diffs, fmt.Sprintf("local secondary indexes are %v, template says %v", haveLSI, wantLSI))
	}
	haveGSI := map[string]string{}
	for _, g := range have.GlobalSecondaryIndexes {
		haveGSI[aws.ToString(g.IndexName)] = indexString(g.KeySchema, g.Projection)
	}
	var missing []ddbtypes.GlobalSecondaryIndex
	for _, g := range want.GlobalSecondaryIndexes {
		name := aws.ToString(g.IndexName)
		got, ok := haveGSI[name]
		switch {
		case !ok:
			missing = append(missing, g)
		case got != indexString(g.KeySchema, g.Projection):
			diffs = append(diffs, fmt.Sprintf("index %s is %s, template says %s", name, got, indexString(g.KeySchema, g.Projection)))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("exists but differs from the template: %s; delete it to have it recreated "+
			"(aws dynamodb delete-table --table-name %s with the stack's environment)",
			strings.Join(diffs, "; "), aws.ToString(want.TableName))
	}
	for _, g := range missing {
		// One index per UpdateTable call, as DynamoDB requires; each carries the attribute
		// definitions its keys use.
		var attrs []ddbtypes.AttributeDefinition
		for _, k := range g.KeySchema {
			for _, a := range want.AttributeDefinitions {
				if aws.ToString(a.AttributeName) == aws.ToString(k.AttributeName) {
					attrs = append(attrs, a)
				}
			}
		}
		_, err := ddb.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:            want.TableName,
			AttributeDefinitions: attrs,
			GlobalSecondaryIndexUpdates: []ddbtypes.GlobalSecondaryIndexUpdate{{Create: &ddbtypes.CreateGlobalSecondaryIndexAction{
				IndexName:             g.IndexName,
				KeySchema:             g.KeySchema,
				Projection:            g.Projection,
				ProvisionedThroughput: g.ProvisionedThroughput,
			}}},
		})
		if err != nil {
			return fmt.Errorf("add index %s: %w", aws.ToString(g.IndexName), err)
		}
		// DynamoDB builds one new index at a time and refuses another meanwhile.
		if err := waitActive(ctx, ddb, aws.ToString(want.TableName)); err != nil {
			return err
		}
	}
	return nil
}

// waitActive polls until the table and all its global secondary indexes are ACTIVE. The SDK's
// table waiter looks at the table alone, and sleeps 20 s between looks, where DynamoDB Local
// takes a few milliseconds.
func waitActive(ctx context.Context, ddb *dynamodb.Client, table string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
		if err != nil {
			return fmt.Errorf("wait for table to be active: %w", err)
		}
		active := out.Table.TableStatus == ddbtypes.TableStatusActive
		for _, g := range out.Table.GlobalSecondaryIndexes {
			active = active && g.IndexStatus == ddbtypes.IndexStatusActive
		}
		if active {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for table to be active: %w (status %s)", ctx.Err(), out.Table.TableStatus)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func keysString(ks []ddbtypes.KeySchemaElement) string {
	parts := make([]string, 0, len(ks))
	for _, k := range ks {
		parts = append(parts, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func indexString(ks []ddbtypes.KeySchemaElement, p *ddbtypes.Projection) string {
	s := keysString(ks)
	if p != nil {
		attrs := slices.Clone(p.NonKeyAttributes)
		sort.Strings(attrs)
		s += " " + string(p.ProjectionType)
		if len(attrs) > 0 {
			s += " [" + strings.Join(attrs, " ") + "]"
		}
	}
	return s
}

func ensureTTL(ctx context.Context, ddb *dynamodb.Client, table, attr string) error {
	out, err := ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		return fmt.Errorf("describe time to live: %w", err)
	}
	if d := out.TimeToLiveDescription; d != nil && d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled {
		if aws.ToString(d.AttributeName) == attr {
			return nil
		}
		return fmt.Errorf("time to live is on attribute %s, template says %s", aws.ToString(d.AttributeName), attr)
	}
	_, err = ddb.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &table,
		TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{AttributeName: &attr, Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable time to live on %s: %w", attr, err)
	}
	return nil
}

// CreateBucket creates bucket name as logicalID defines it: Object Lock (with its default
// retention), versioning and ownership controls. An existing bucket is kept and brought up to
// the same settings.
//
// Not applied locally: lifecycle rules (versitygw does not expire objects), default encryption
// (objects rest in the developer's own files), the public access block, bucket policies,
// notifications, replication, logging, inventory, analytics, tiering, acceleration, website and
// tags, which versitygw lacks or which have no effect on one machine.
func (t *Template) CreateBucket(ctx context.Context, s3c *s3.Client, logicalID, name string) error {
	def, err := t.Bucket(logicalID)
	if err != nil {
		return err
	}
	lock := def.ObjectLockEnabled != nil && *def.ObjectLockEnabled ||
		def.ObjectLockConfiguration != nil && aws.ToString(def.ObjectLockConfiguration.ObjectLockEnabled) == "Enabled"
	in := &s3.CreateBucketInput{Bucket: &name}
	if lock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if r := s3c.Options().Region; r != "" && r != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(r)}
	}
	if _, err := s3c.CreateBucket(ctx, in); err != nil {
		var owned *s3types.BucketAlreadyOwnedByYou
		var exists *s3types.BucketAlreadyExists
		if !errors.As(err, &owned) && !errors.As(err, &exists) {
			return fmt.Errorf("create bucket %s (%s): %w", name, logicalID, err)
		}
	}
	if v := def.VersioningConfiguration; v != nil && v.Status == string(s3types.BucketVersioningStatusEnabled) {
		_, err := s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  &name,
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled},
		})
		if err != nil {
			return fmt.Errorf("bucket %s (%s): enable versioning: %w", name, logicalID, err)
		}
	}
	if c := def.ObjectLockConfiguration; lock && c != nil && c.Rule != nil && c.Rule.DefaultRetention != nil {
		dr := c.Rule.DefaultRetention
		ret := &s3types.DefaultRetention{Mode: s3types.ObjectLockRetentionMode(aws.ToString(dr.Mode))}
		if dr.Days != nil {
			ret.Days = aws.Int32(int32(*dr.Days))
		}
		if dr.Years != nil {
			ret.Years = aws.Int32(int32(*dr.Years))
		}
		_, err := s3c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
			Bucket: &name,
			ObjectLockConfiguration: &s3types.ObjectLockConfiguration{
				ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
				Rule:              &s3types.ObjectLockRule{DefaultRetention: ret},
			},
		})
		if err != nil {
			return fmt.Errorf("bucket %s (%s): object lock configuration: %w", name, logicalID, err)
		}
	}
	if oc := def.OwnershipControls; oc != nil && len(oc.Rules) > 0 {
		var rules []s3types.OwnershipControlsRule
		for _, r := range oc.Rules {
			rules = append(rules, s3types.OwnershipControlsRule{ObjectOwnership: s3types.ObjectOwnership(aws.ToString(r.ObjectOwnership))})
		}
		_, err := s3c.PutBucketOwnershipControls(ctx, &s3.PutBucketOwnershipControlsInput{
			Bucket:            &name,
			OwnershipControls: &s3types.OwnershipControls{Rules: rules},
		})
		if err != nil && !notImplemented(err) {
			return fmt.Errorf("bucket %s (%s): ownership controls: %w", name, logicalID, err)
		}
	}
	return nil
}

func notImplemented(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NotImplemented"
}
