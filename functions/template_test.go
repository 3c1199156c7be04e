// Package functions_test checks that template.yaml, the Makefile and functions/ describe the same
// Lambdas, each deployed as Mailroom requires: built for arm64, logs with retention, every variable
// its code reads set, least-privilege IAM, no lost async events, storage with its safeguards.
package functions_test

// The template is read with yaml.v3 rather than goformation: goformation's SAM types cannot hold
// an intrinsic function in Environment.Variables and do not know LoggingConfig, so it either
// refuses this template or silently drops the fields the checks are about.

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"
)

func TestTemplate(t *testing.T) {
	tp := readTemplate(t, os.DirFS(".."), "template.yaml")
	if len(tp.ofType("AWS::Serverless::Function")) == 0 {
		t.Fatal("template.yaml has no AWS::Serverless::Function: nothing was checked")
	}
	for _, p := range checkAll(tp, os.DirFS("..")) {
		t.Error(p)
	}
}

// checkAll runs every rule; each returns its problems sorted, one line each.
func checkAll(tp *template, repo fs.FS) []string {
	var out []string
	for _, check := range []func(*template, fs.FS) []string{
		checkFunctions, checkBuild, checkEnv, checkPolicies, checkStorage,
	} {
		out = append(out, check(tp, repo)...)
	}
	return out
}

// --- Allow-lists. Each entry is an exception a reviewer agreed to; say why next to it. ---

// resourceStarActions may use Resource "*" because AWS offers no resource ARN to scope them to.
var resourceStarActions = map[string]string{
	"cloudwatch:PutMetricData": "no resource-level permissions; scope with the cloudwatch:namespace condition",
	"xray:PutTraceSegments":    "X-Ray trace data has no resource ARN",
	"xray:PutTelemetryRecords": "X-Ray telemetry has no resource ARN",
}

// samPolicyTemplates are the SAM policy templates reviewed as scoped to one named resource and to
// the few actions a function needs. Templates granting create/update/delete on a whole table or
// bucket (DynamoDBCrudPolicy, S3CrudPolicy, S3FullAccessPolicy, …) are left out on purpose, and so
// are the whole-bucket read/write ones: Mailroom keeps all mail in one bucket, so a function gets
// a Statement naming the prefix it uses.
var samPolicyTemplates = map[string]string{
	"SQSSendMessagePolicy":       "send to one queue (on-failure destinations)",
	"SNSPublishMessagePolicy":    "publish to one topic",
	"EventBridgePutEventsPolicy": "put events on one bus",
	"SQSPollerPolicy":            "receive and delete on one queue",
	"DynamoDBStreamReadPolicy":   "read one table's stream",
}

// managedPolicies are AWS managed policies a function may attach. None is reviewed yet: every one
// that exists grants more than a single Mailroom function needs.
var managedPolicies = map[string]string{}

// lambdaProvided are variables the Lambda runtime sets itself; the template may not set them.
var lambdaProvided = []string{
	"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
	"AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ",
}

// --- Functions: build method, runtime, architecture, handler, logs, failure destinations ---

func checkFunctions(tp *template, _ fs.FS) []string {
	var ps problems
	for _, fn := range tp.ofType("AWS::Serverless::Function") {
		at := tp.at(fn)
		if v := get(fn.node, "Metadata", "BuildMethod"); lit(v) != "makefile" {
			ps.add("%s: Metadata.BuildMethod is %s, want makefile (sam build then runs the Makefile's build-%s target)",
				tp.where(v, fn), desc(v), fn.id)
		}
		if v := tp.prop(fn, "CodeUri"); lit(v) != "." {
			ps.add("%s: CodeUri is %s, want . (the repository root, where the Makefile's build-%s target is)",
				tp.where(v, fn), desc(v), fn.id)
		}
		if v := tp.prop(fn, "Runtime"); lit(v) != "provided.al2023" {
			ps.add("%s: Runtime is %s (function or Globals), want provided.al2023", tp.where(v, fn), desc(v))
		}
		if v := tp.prop(fn, "Handler"); lit(v) != "bootstrap" {
			ps.add("%s: Handler is %s (function or Globals), want bootstrap", tp.where(v, fn), desc(v))
		}
		// SAM appends a function's lists to the Globals' lists rather than replacing them.
		var arch []string
		for _, n := range []*yaml.Node{get(tp.globals, "Architectures"), get(fn.props, "Architectures")} {
			for _, item := range seq(n) {
				arch = append(arch, desc(item))
			}
		}
		if !reflect.DeepEqual(arch, []string{`"arm64"`}) {
			got := "missing"
			if len(arch) > 0 {
				got = "[" + strings.Join(arch, ", ") + "]"
			}
			ps.add("%s: Architectures is %s (Globals and function lists add up), want [arm64]", at, got)
		}
		ps.extend(tp.logGroupProblems(fn))
		ps.extend(tp.onFailureProblems(fn))
	}
	return ps.sorted()
}

func (tp *template) logGroupProblems(fn *resource) []string {
	v := tp.prop(fn, "LoggingConfig", "LogGroup")
	if v == nil {
		return []string{fmt.Sprintf("%s: LoggingConfig.LogGroup is missing: Lambda would create a log group that keeps logs forever; "+
			"point it at an AWS::Logs::LogGroup with RetentionInDays", tp.at(fn))}
	}
	f, arg := intrinsic(v)
	target := lit(arg)
	if f != "Ref" || target == "" {
		return []string{fmt.Sprintf("%s: LoggingConfig.LogGroup is %s, want !Ref to an AWS::Logs::LogGroup in this template, "+
			"so its retention is managed here", tp.where(v, fn), desc(v))}
	}
	lg := tp.byID[target]
	if lg == nil || lg.typ != "AWS::Logs::LogGroup" {
		got := "not a resource in this template"
		if lg != nil {
			got = "of type " + lg.typ
		}
		return []string{fmt.Sprintf("%s: LoggingConfig.LogGroup refers to %s, which is %s; want an AWS::Logs::LogGroup",
			tp.where(v, fn), target, got)}
	}
	if get(lg.props, "RetentionInDays") == nil {
		return []string{fmt.Sprintf("%s: RetentionInDays is missing, so %s's logs would be kept forever",
			tp.at(lg), fn.id)}
	}
	return nil
}

// destinationTypes are the OnFailure destination types Lambda supports; SAM creates the queue or
// topic itself when Destination is left out for SQS and SNS.
var destinationTypes = map[string]bool{"SQS": false, "SNS": false, "Lambda": true, "EventBridge": true, "S3": true}

func (tp *template) onFailureProblems(fn *resource) []string {
	invokers := tp.asyncInvokers(fn)
	if len(invokers) == 0 {
		return nil
	}
	why := "invoked asynchronously by " + strings.Join(invokers, ", ")
	of := tp.prop(fn, "EventInvokeConfig", "DestinationConfig", "OnFailure")
	if of == nil {
		return []string{fmt.Sprintf("%s: %s, but EventInvokeConfig.DestinationConfig.OnFailure is missing: "+
			"an event that fails every retry would be lost", tp.at(fn), why)}
	}
	typ := get(of, "Type")
	needsDest, ok := destinationTypes[lit(typ)]
	if !ok {
		return []string{fmt.Sprintf("%s: %s; EventInvokeConfig.DestinationConfig.OnFailure.Type is %s, want SQS, SNS, Lambda, EventBridge or S3",
			tp.where(typ, fn), why, desc(typ))}
	}
	dest := get(of, "Destination")
	if dest == nil && needsDest {
		return []string{fmt.Sprintf("%s: %s; EventInvokeConfig.DestinationConfig.OnFailure.Destination is missing (required for Type %s)",
			tp.where(of, fn), why, lit(typ))}
	}
	for _, id := range refs(dest) {
		if tp.byID[id] == nil {
			return []string{fmt.Sprintf("%s: %s; EventInvokeConfig.DestinationConfig.OnFailure.Destination refers to %s, which is not in the template",
				tp.where(dest, fn), why, id)}
		}
	}
	return nil
}

// asyncEventTypes are SAM event sources whose service invokes the function asynchronously.
var asyncEventTypes = map[string]bool{
	"S3": true, "SNS": true, "EventBridgeRule": true, "CloudWatchEvent": true, "Schedule": true,
	"ScheduleV2": true, "CloudWatchLogs": true, "IoTRule": true,
}

// asyncPrincipals are services that invoke a function asynchronously when granted permission.
var asyncPrincipals = map[string]bool{
	"ses.amazonaws.com": true, "events.amazonaws.com": true, "sns.amazonaws.com": true,
	"s3.amazonaws.com": true, "scheduler.amazonaws.com": true,
}

// asyncInvokers describes everything in the template that invokes fn asynchronously.
func (tp *template) asyncInvokers(fn *resource) []string {
	var out []string
	for _, name := range keys(get(fn.props, "Events")) {
		ev := get(fn.props, "Events", name)
		typ := lit(get(ev, "Type"))
		if !asyncEventTypes[typ] {
			continue
		}
		// An SNS event with SqsSubscription reaches the function through a queue, not asynchronously.
		if typ == "SNS" && isTrue(get(ev, "Properties", "SqsSubscription")) {
			continue
		}
		out = append(out, fmt.Sprintf("event %s (%s)", name, typ))
	}
	sesRule := false
	for _, r := range tp.resources {
		switch r.typ {
		case "AWS::SES::ReceiptRule":
			for _, a := range seq(get(r.props, "Rule", "Actions")) {
				la := get(a, "LambdaAction")
				if !refersTo(get(la, "FunctionArn"), fn.id) {
					continue
				}
				sesRule = true
				// SES's default invocation type is Event; only RequestResponse waits for the result.
				if lit(get(la, "InvocationType")) != "RequestResponse" {
					out = append(out, "SES receipt rule "+r.id)
				}
			}
		case "AWS::Events::Rule":
			for _, target := range seq(get(r.props, "Targets")) {
				if refersTo(get(target, "Arn"), fn.id) {
					out = append(out, "EventBridge rule "+r.id)
				}
			}
		case "AWS::Scheduler::Schedule":
			if refersTo(get(r.props, "Target", "Arn"), fn.id) {
				out = append(out, "EventBridge Scheduler schedule "+r.id)
			}
		case "AWS::SNS::Subscription":
			if lit(get(r.props, "Protocol")) == "lambda" && refersTo(get(r.props, "Endpoint"), fn.id) {
				out = append(out, "SNS subscription "+r.id)
			}
		case "AWS::SNS::Topic":
			for _, s := range seq(get(r.props, "Subscription")) {
				if lit(get(s, "Protocol")) == "lambda" && refersTo(get(s, "Endpoint"), fn.id) {
					out = append(out, "SNS topic "+r.id)
				}
			}
		case "AWS::S3::Bucket":
			for _, c := range seq(get(r.props, "NotificationConfiguration", "LambdaConfigurations")) {
				if refersTo(get(c, "Function"), fn.id) {
					out = append(out, "S3 notifications of "+r.id)
				}
			}
		}
	}
	for _, r := range tp.ofType("AWS::Lambda::Permission") {
		principal := lit(get(r.props, "Principal"))
		if !asyncPrincipals[principal] || !refersTo(get(r.props, "FunctionName"), fn.id) {
			continue
		}
		// The receipt rule, when it is in the template, says how SES invokes.
		if principal == "ses.amazonaws.com" && sesRule {
			continue
		}
		out = append(out, fmt.Sprintf("%s (Lambda permission %s)", principal, r.id))
	}
	return out
}

// --- Build: Makefile targets and function folders ---

func checkBuild(tp *template, repo fs.FS) []string {
	var ps problems
	mk, err := readMakefile(repo)
	if err != nil {
		return []string{err.Error()}
	}
	built := map[string]bool{}
	for _, fn := range tp.ofType("AWS::Serverless::Function") {
		target := "build-" + fn.id
		tg, ok := mk.targets[target]
		if !ok {
			ps.add("%s: %s has no %s target; sam build (BuildMethod makefile) runs it to build ./functions/<name>/bootstrap",
				mk.name, fn.id, target)
			continue
		}
		folders := tg.folders()
		if len(folders) != 1 {
			ps.add("%s:%d: %s builds %d function folders %v, want exactly one ./functions/<name>/bootstrap",
				mk.name, tg.line, target, len(folders), folders)
			continue
		}
		name := folders[0]
		built[name] = true
		recipe := mk.expand(tg.recipe)
		for _, want := range []struct{ text, says string }{
			{"GOOS=linux", "set GOOS=linux"},
			{"GOARCH=arm64", "set GOARCH=arm64"},
			{"$(ARTIFACTS_DIR)/bootstrap", "write the binary to $(ARTIFACTS_DIR)/bootstrap"},
		} {
			if !strings.Contains(recipe, want.text) {
				ps.add("%s:%d: %s does not %s (the function runs on provided.al2023, arm64, as bootstrap)",
					mk.name, tg.line, target, want.says)
			}
		}
		dir := "functions/" + name
		if st, err := fs.Stat(repo, dir); err != nil || !st.IsDir() {
			ps.add("%s:%d: %s builds ./%s/bootstrap, but %s/ does not exist", mk.name, tg.line, target, dir, dir)
			continue
		}
		if _, err := fs.Stat(repo, dir+"/bootstrap/main.go"); err != nil {
			ps.add("%s:%d: %s builds ./%s/bootstrap, but %s/bootstrap/main.go does not exist",
				mk.name, tg.line, target, dir, dir)
		}
	}
	for _, target := range mk.order {
		id, ok := strings.CutPrefix(target, "build-")
		if !ok {
			continue
		}
		if r := tp.byID[id]; r == nil || r.typ != "AWS::Serverless::Function" {
			ps.add("%s:%d: %s has no AWS::Serverless::Function %s in %s", mk.name, mk.targets[target].line, target, id, tp.file)
		}
	}
	entries, err := fs.ReadDir(repo, "functions")
	if err != nil {
		ps.add("functions/: %v", err)
	}
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "testdata" || strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") {
			continue
		}
		if !built[e.Name()] {
			ps.add("functions/%s/: no function in %s builds it (no build-<LogicalId> target of a template function builds ./functions/%s/bootstrap); deploy it or remove it",
				e.Name(), tp.file, e.Name())
		}
	}
	return ps.sorted()
}

// --- Environment: every variable a function's code reads is set by the template ---

func checkEnv(tp *template, repo fs.FS) []string {
	var ps problems
	mk, err := readMakefile(repo)
	if err != nil {
		return nil // reported by checkBuild
	}
	for _, fn := range tp.ofType("AWS::Serverless::Function") {
		tg, ok := mk.targets["build-"+fn.id]
		if !ok || len(tg.folders()) != 1 {
			continue // reported by checkBuild
		}
		dir := "functions/" + tg.folders()[0]
		reads, unsupported, err := envReads(repo, dir)
		if err != nil {
			continue // a missing folder is reported by checkBuild
		}
		ps.extend(unsupported)
		set := map[string]bool{}
		for _, vars := range []*yaml.Node{get(tp.globals, "Environment", "Variables"), get(fn.props, "Environment", "Variables")} {
			for _, k := range keys(vars) {
				set[k] = true
			}
		}
		line := fn.line
		if v := get(fn.props, "Environment", "Variables"); v != nil {
			line = v.Line
		}
		for _, r := range reads {
			if set[r.name] || slices.Contains(lambdaProvided, r.name) {
				continue
			}
			ps.add("%s: %s reads %s (%s), but neither its Environment.Variables (%s:%d) nor the Globals' set it",
				r.pos, fn.id, r.name, r.how, tp.file, line)
		}
	}
	return ps.sorted()
}

type envRead struct {
	name, how, pos string
}

// envReads finds the variables the non-test Go files under dir read: env:"NAME" struct tags
// (caarlos0/env) and os.Getenv / os.LookupEnv with a literal name or a constant.
func envReads(repo fs.FS, dir string) (reads []envRead, unsupported []string, err error) {
	fset := token.NewFileSet()
	var files []*ast.File
	err = fs.WalkDir(repo, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
			return fs.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := fs.ReadFile(repo, p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	pos := func(n ast.Node) string {
		p := fset.Position(n.Pos())
		return fmt.Sprintf("%s:%d", p.Filename, p.Line)
	}
	consts := map[string]map[string]string{} // package dir → constant → string value
	for _, f := range files {
		pkg := path.Dir(fset.Position(f.Pos()).Filename)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if s, ok := stringLit(vs.Values[i]); ok {
							if consts[pkg] == nil {
								consts[pkg] = map[string]string{}
							}
							consts[pkg][name.Name] = s
						}
					}
				}
			}
		}
	}
	for _, f := range files {
		pkg := path.Dir(fset.Position(f.Pos()).Filename)
		osName := ""
		for _, imp := range f.Imports {
			if imp.Path.Value == `"os"` {
				osName = "os"
				if imp.Name != nil {
					osName = imp.Name.Name
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Field:
				if n.Tag == nil {
					return true
				}
				tag, err := strconv.Unquote(n.Tag.Value)
				if err != nil {
					return true
				}
				st := reflect.StructTag(tag)
				if _, ok := st.Lookup("envPrefix"); ok {
					unsupported = append(unsupported, fmt.Sprintf("%s: envPrefix is not followed by this check; spell each variable's full name in its env tag", pos(n)))
				}
				if name, _, _ := strings.Cut(st.Get("env"), ","); name != "" {
					reads = append(reads, envRead{name: name, how: "env tag", pos: pos(n)})
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || osName == "" || len(n.Args) != 1 {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); !ok || x.Name != osName || (sel.Sel.Name != "Getenv" && sel.Sel.Name != "LookupEnv") {
					return true
				}
				name, ok := stringLit(n.Args[0])
				if id, isIdent := n.Args[0].(*ast.Ident); !ok && isIdent {
					name, ok = consts[pkg][id.Name]
				}
				if ok {
					reads = append(reads, envRead{name: name, how: "os." + sel.Sel.Name, pos: pos(n)})
				}
			}
			return true
		})
	}
	return reads, unsupported, nil
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

// --- Least privilege ---

func checkPolicies(tp *template, _ fs.FS) []string {
	var ps problems
	for _, fn := range tp.ofType("AWS::Serverless::Function") {
		if role := get(fn.props, "Role"); role != nil {
			// With an explicit role SAM ignores Policies; the role is what the function gets.
			ps.extend(tp.roleProblems(fn, role))
			continue
		}
		pol := get(fn.props, "Policies")
		entries := seq(pol)
		if pol != nil && pol.Kind != yaml.SequenceNode {
			entries = []*yaml.Node{pol}
		}
		for i, e := range entries {
			ps.extend(tp.policyEntryProblems(e.Line, fmt.Sprintf("%s: Policies[%d]", fn.id, i), e))
		}
	}
	return ps.sorted()
}

// policyEntryProblems checks one entry of Policies (or of a role's ManagedPolicyArns); label names
// it in messages.
func (tp *template) policyEntryProblems(line int, label string, e *yaml.Node) []string {
	at := fmt.Sprintf("%s:%d: %s", tp.file, line, label)
	if s, ok := literal(e); ok {
		if _, ok := managedPolicies[s]; ok {
			return nil
		}
		return []string{fmt.Sprintf("%s: managed policy %s is not on the reviewed list (managedPolicies in functions/template_test.go); "+
			"it grants more than one function needs, write a Statement scoped to what the function uses", at, s)}
	}
	if f, _ := intrinsic(e); f != "" {
		for _, id := range refs(e) {
			if r := tp.byID[id]; r != nil && r.typ == "AWS::IAM::ManagedPolicy" {
				return tp.statementProblems(fmt.Sprintf("%s (%s)", label, id), get(r.props, "PolicyDocument"))
			}
		}
		return []string{fmt.Sprintf("%s: %s cannot be checked; refer to an AWS::IAM::ManagedPolicy in this template or write a Statement", at, desc(e))}
	}
	if e.Kind != yaml.MappingNode {
		return []string{fmt.Sprintf("%s: %s is not a policy", at, desc(e))}
	}
	if get(e, "Statement") != nil {
		return tp.statementProblems(label, e)
	}
	var out []string
	for _, name := range keys(e) {
		if _, ok := samPolicyTemplates[name]; !ok {
			out = append(out, fmt.Sprintf("%s: SAM policy template %s is not on the reviewed list (samPolicyTemplates in functions/template_test.go); "+
				"broad templates such as DynamoDBCrudPolicy or S3CrudPolicy grant more than one function needs, write a Statement", at, name))
		}
	}
	return out
}

func (tp *template) roleProblems(fn *resource, role *yaml.Node) []string {
	at := fmt.Sprintf("%s:%d: %s: Role", tp.file, role.Line, fn.id)
	var r *resource
	for _, id := range refs(role) {
		if x := tp.byID[id]; x != nil && x.typ == "AWS::IAM::Role" {
			r = x
		}
	}
	if r == nil {
		return []string{fmt.Sprintf("%s: %s cannot be checked; use Policies, or an AWS::IAM::Role in this template", at, desc(role))}
	}
	var out []string
	for i, p := range seq(get(r.props, "Policies")) {
		out = append(out, tp.statementProblems(fmt.Sprintf("%s (role of %s): Policies[%d]", r.id, fn.id, i), get(p, "PolicyDocument"))...)
	}
	for i, m := range seq(get(r.props, "ManagedPolicyArns")) {
		out = append(out, tp.policyEntryProblems(m.Line, fmt.Sprintf("%s (role of %s): ManagedPolicyArns[%d]", r.id, fn.id, i), m)...)
	}
	return out
}

// statementProblems checks the Allow statements of a policy document.
func (tp *template) statementProblems(label string, doc *yaml.Node) []string {
	var out []string
	stmts := get(doc, "Statement")
	list := seq(stmts)
	if stmts != nil && stmts.Kind == yaml.MappingNode {
		list = []*yaml.Node{stmts}
	}
	for i, s := range list {
		if lit(get(s, "Effect")) != "Allow" {
			continue
		}
		where := fmt.Sprintf("%s:%d: %s.Statement[%d]", tp.file, s.Line, label, i)
		if sid := lit(get(s, "Sid")); sid != "" {
			where += " (" + sid + ")"
		}
		if get(s, "NotAction") != nil {
			out = append(out, where+": Allow with NotAction grants every other action")
		}
		if get(s, "NotResource") != nil {
			out = append(out, where+": Allow with NotResource grants every other resource")
		}
		var actions []string
		for _, a := range scalars(get(s, "Action")) {
			actions = append(actions, a)
			if strings.ContainsAny(a, "*?") {
				out = append(out, fmt.Sprintf("%s: action %q is a wildcard; name the actions the function calls", where, a))
			}
		}
		if get(s, "Action") == nil && get(s, "NotAction") == nil {
			out = append(out, where+": no Action")
		}
		if slices.Contains(scalars(get(s, "Resource")), "*") {
			var unscoped []string
			for _, a := range actions {
				if _, ok := resourceStarActions[a]; !ok {
					unscoped = append(unscoped, a)
				}
			}
			if len(unscoped) > 0 {
				out = append(out, fmt.Sprintf("%s: Resource \"*\" for %s; scope it to ARNs (an action AWS cannot scope by resource goes in resourceStarActions in functions/template_test.go, with the reason)",
					where, strings.Join(unscoped, ", ")))
			}
		}
	}
	return out
}

// --- Storage safeguards ---

// keptTables hold records that must never expire, so they have no TTL; each says why.
var keptTables = map[string]string{
	"AuditTable": "the audit log is the record of who changed what; nothing in it may lapse",
}

func checkStorage(tp *template, _ fs.FS) []string {
	var ps problems
	for _, r := range tp.resources {
		at := tp.at(r)
		switch r.typ {
		case "AWS::DynamoDB::Table":
			if v := get(r.props, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"); !isTrue(v) {
				ps.add("%s: PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled is %s, want true", at, desc(v))
			}
			ttl := get(r.props, "TimeToLiveSpecification")
			switch {
			case ttl == nil && keptTables[r.id] != "":
			case ttl == nil:
				ps.add("%s: TimeToLiveSpecification is missing; records that must expire would stay", at)
			case !isTrue(get(ttl, "Enabled")) || lit(get(ttl, "AttributeName")) == "":
				ps.add("%s: TimeToLiveSpecification needs Enabled: true and an AttributeName (Enabled is %s, AttributeName is %s)",
					at, desc(get(ttl, "Enabled")), desc(get(ttl, "AttributeName")))
			}
		case "AWS::Serverless::SimpleTable", "AWS::DynamoDB::GlobalTable":
			ps.add("%s: %s is not checked for point-in-time recovery and TTL; use AWS::DynamoDB::Table or extend checkStorage", at, r.typ)
		case "AWS::S3::Bucket":
			ps.extend(tp.bucketProblems(at, r))
		}
	}
	return ps.sorted()
}

func (tp *template) bucketProblems(at string, b *resource) []string {
	var out []string
	rules := seq(get(b.props, "BucketEncryption", "ServerSideEncryptionConfiguration"))
	if len(rules) == 0 {
		out = append(out, at+": BucketEncryption.ServerSideEncryptionConfiguration is missing")
	}
	for i, rule := range rules {
		alg := get(rule, "ServerSideEncryptionByDefault", "SSEAlgorithm")
		if a := lit(alg); a != "AES256" && a != "aws:kms" && a != "aws:kms:dsse" {
			out = append(out, fmt.Sprintf("%s: ServerSideEncryptionConfiguration[%d].ServerSideEncryptionByDefault.SSEAlgorithm is %s, want AES256, aws:kms or aws:kms:dsse",
				at, i, desc(alg)))
		}
	}
	var open []string
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if !isTrue(get(b.props, "PublicAccessBlockConfiguration", k)) {
			open = append(open, k)
		}
	}
	if len(open) > 0 {
		out = append(out, fmt.Sprintf("%s: PublicAccessBlockConfiguration does not set %s to true", at, strings.Join(open, ", ")))
	}
	if v := get(b.props, "VersioningConfiguration", "Status"); lit(v) != "Enabled" {
		out = append(out, fmt.Sprintf("%s: VersioningConfiguration.Status is %s, want Enabled", at, desc(v)))
	}
	return append(out, tp.secureTransportProblems(at, b)...)
}

// secureTransportProblems looks for a bucket policy statement that denies every S3 action on the
// bucket and its objects when the request did not use TLS.
func (tp *template) secureTransportProblems(at string, b *resource) []string {
	var found []string // what each candidate statement lacks
	for _, p := range tp.ofType("AWS::S3::BucketPolicy") {
		if !refersTo(get(p.props, "Bucket"), b.id) {
			continue
		}
		for i, s := range seq(get(p.props, "PolicyDocument", "Statement")) {
			cond := get(s, "Condition", "Bool", "aws:SecureTransport")
			if lit(get(s, "Effect")) != "Deny" || lit(cond) != "false" {
				continue
			}
			var lacks []string
			if pr := get(s, "Principal"); lit(pr) != "*" && lit(get(pr, "AWS")) != "*" {
				lacks = append(lacks, `Principal "*"`)
			}
			if acts := scalars(get(s, "Action")); !slices.Contains(acts, "s3:*") && !slices.Contains(acts, "*") {
				lacks = append(lacks, `Action "s3:*"`)
			}
			bucket, objects := false, false
			for _, res := range seq1(get(s, "Resource")) {
				if !refersTo(res, b.id) {
					continue
				}
				if f, arg := intrinsic(res); f == "Fn::GetAtt" || (f == "Fn::Sub" && !strings.HasSuffix(subTemplate(arg), "/*")) {
					bucket = true
				} else if f == "Fn::Sub" || f == "Fn::Join" {
					objects = true
				}
			}
			if !bucket {
				lacks = append(lacks, "the bucket ARN in Resource")
			}
			if !objects {
				lacks = append(lacks, `the objects ("<bucket ARN>/*") in Resource`)
			}
			if len(lacks) == 0 {
				return nil
			}
			found = append(found, fmt.Sprintf("%s:%d: %s.Statement[%d] lacks %s", tp.file, s.Line, p.id, i, strings.Join(lacks, ", ")))
		}
	}
	if len(found) > 0 {
		return []string{fmt.Sprintf("%s: the bucket policy's aws:SecureTransport deny is incomplete: %s", at, strings.Join(found, "; "))}
	}
	return []string{at + `: no AWS::S3::BucketPolicy denies s3:* when aws:SecureTransport is "false"`}
}

// --- Template reading: YAML nodes with CloudFormation's short-form tags ---

type template struct {
	file      string
	globals   *yaml.Node // Globals.Function
	resources []*resource
	byID      map[string]*resource
}

type resource struct {
	id    string
	typ   string
	line  int
	node  *yaml.Node // the resource's mapping
	props *yaml.Node // its Properties
}

func readTemplate(t *testing.T, fsys fs.FS, name string) *template {
	t.Helper()
	src, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := parseTemplate(path.Base(name), src)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func parseTemplate(file string, src []byte) (*template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a template", file)
	}
	root := doc.Content[0]
	tp := &template{file: file, globals: get(root, "Globals", "Function"), byID: map[string]*resource{}}
	res := get(root, "Resources")
	if res == nil || res.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: no Resources", file)
	}
	for i := 0; i+1 < len(res.Content); i += 2 {
		k, v := res.Content[i], deref(res.Content[i+1])
		r := &resource{id: k.Value, typ: lit(get(v, "Type")), line: k.Line, node: v, props: get(v, "Properties")}
		tp.resources = append(tp.resources, r)
		tp.byID[r.id] = r
	}
	return tp, nil
}

func (tp *template) ofType(typ string) []*resource {
	var out []*resource
	for _, r := range tp.resources {
		if r.typ == typ {
			out = append(out, r)
		}
	}
	return out
}

// prop returns a function property, falling back to Globals.Function as SAM does for maps and
// scalars.
func (tp *template) prop(fn *resource, p ...string) *yaml.Node {
	if n := get(fn.props, p...); n != nil {
		return n
	}
	return get(tp.globals, p...)
}

// at is "file:line: LogicalId" for the resource itself.
func (tp *template) at(r *resource) string { return fmt.Sprintf("%s:%d: %s", tp.file, r.line, r.id) }

// where is "file:line: LogicalId" at n when the template has it, else at the resource.
func (tp *template) where(n *yaml.Node, r *resource) string {
	if n == nil {
		return tp.at(r)
	}
	return fmt.Sprintf("%s:%d: %s", tp.file, n.Line, r.id)
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// get follows mapping keys; it returns nil when any step is missing.
func get(n *yaml.Node, p ...string) *yaml.Node {
	n = deref(n)
	for _, k := range p {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = deref(n.Content[i+1])
				break
			}
		}
		n = next
	}
	return n
}

func keys(n *yaml.Node) []string {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

func seq(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode || isTagged(n) {
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = deref(c)
	}
	return out
}

// seq1 is seq for properties that take one value or a list of them.
func seq1(n *yaml.Node) []*yaml.Node {
	if n = deref(n); n != nil && (n.Kind != yaml.SequenceNode || isTagged(n)) {
		return []*yaml.Node{n}
	}
	return seq(n)
}

// scalars returns the literal strings of a one-or-list property such as Action.
func scalars(n *yaml.Node) []string {
	var out []string
	for _, c := range seq1(n) {
		if s, ok := literal(c); ok {
			out = append(out, s)
		}
	}
	return out
}

func isTagged(n *yaml.Node) bool {
	tag := n.ShortTag()
	return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!")
}

// literal returns a plain scalar's value; intrinsic functions are not literals.
func literal(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || isTagged(n) || n.ShortTag() == "!!null" {
		return "", false
	}
	return n.Value, true
}

func lit(n *yaml.Node) string { s, _ := literal(n); return s }

func isTrue(n *yaml.Node) bool { return strings.EqualFold(lit(n), "true") }

// intrinsic recognises an intrinsic function in short (!Ref X) or long ({Ref: X}) form and
// returns its name in long form and its argument.
func intrinsic(n *yaml.Node) (string, *yaml.Node) {
	n = deref(n)
	if n == nil {
		return "", nil
	}
	if isTagged(n) {
		name := strings.TrimPrefix(n.Tag, "!")
		if name != "Ref" && name != "Condition" {
			name = "Fn::" + name
		}
		arg := *n
		arg.Tag = ""
		arg.Style &^= yaml.TaggedStyle
		return name, &arg
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		k := n.Content[0].Value
		if k == "Ref" || strings.HasPrefix(k, "Fn::") {
			return k, deref(n.Content[1])
		}
	}
	return "", nil
}

var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// refs returns the logical ids n refers to through Ref, Fn::GetAtt and Fn::Sub, anywhere inside.
func refs(n *yaml.Node) []string {
	var out []string
	addSub := func(s string, local []string) {
		for _, m := range subVar.FindAllStringSubmatch(s, -1) {
			id, _, _ := strings.Cut(strings.TrimSpace(m[1]), ".")
			if !strings.HasPrefix(id, "AWS::") && !slices.Contains(local, id) {
				out = append(out, id)
			}
		}
	}
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		n = deref(n)
		if n == nil {
			return
		}
		f, arg := intrinsic(n)
		switch f {
		case "Ref":
			if s, ok := literal(arg); ok && !strings.HasPrefix(s, "AWS::") {
				out = append(out, s)
			}
			return
		case "Fn::GetAtt":
			if s, ok := literal(arg); ok {
				id, _, _ := strings.Cut(s, ".")
				out = append(out, id)
			} else if items := seq(arg); len(items) > 0 {
				out = append(out, lit(items[0]))
			}
			return
		case "Fn::Sub":
			if s, ok := literal(arg); ok {
				addSub(s, nil)
			} else if items := seq(arg); len(items) == 2 {
				addSub(lit(items[0]), keys(items[1]))
				walk(items[1])
			}
			return
		case "":
		default:
			walk(arg)
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return out
}

func refersTo(n *yaml.Node, id string) bool { return slices.Contains(refs(n), id) }

// subTemplate is the template string of a Fn::Sub argument.
func subTemplate(arg *yaml.Node) string {
	if s, ok := literal(arg); ok {
		return s
	}
	if items := seq(arg); len(items) > 0 {
		return lit(items[0])
	}
	return ""
}

// desc renders a value for a message.
func desc(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "missing"
	}
	if s, ok := literal(n); ok {
		return strconv.Quote(s)
	}
	if f, arg := intrinsic(n); f != "" {
		short := "!" + strings.TrimPrefix(f, "Fn::")
		if s, ok := literal(arg); ok {
			return short + " " + s
		}
		return short + " …"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "null"
}

// --- Makefile reading ---

type makefile struct {
	name    string
	vars    map[string]string
	targets map[string]mkTarget
	order   []string
}

type mkTarget struct {
	line   int
	recipe string
}

var (
	mkVar      = regexp.MustCompile(`^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?|:|::|\+)?=\s*(.*)$`)
	mkRule     = regexp.MustCompile(`^([A-Za-z0-9_.%/-]+)\s*:($|[^=].*$)`)
	mkFolder   = regexp.MustCompile(`(?:^|\s)(?:\./)?functions/([A-Za-z0-9_.-]+)/bootstrap/?(?:\s|$)`)
	mkVarUsage = regexp.MustCompile(`\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]`)
)

func readMakefile(repo fs.FS) (makefile, error) {
	src, err := fs.ReadFile(repo, "Makefile")
	if err != nil {
		return makefile{}, fmt.Errorf("Makefile: %v", err)
	}
	mk := makefile{name: "Makefile", vars: map[string]string{}, targets: map[string]mkTarget{}}
	current := ""
	for i, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "\t") {
			if current != "" {
				tg := mk.targets[current]
				tg.recipe += strings.TrimSpace(l) + "\n"
				mk.targets[current] = tg
			}
			continue
		}
		current = ""
		if m := mkVar.FindStringSubmatch(l); m != nil {
			mk.vars[m[1]] = m[2]
			continue
		}
		if m := mkRule.FindStringSubmatch(l); m != nil && !strings.HasPrefix(m[1], ".") {
			current = m[1]
			if _, dup := mk.targets[current]; !dup {
				mk.order = append(mk.order, current)
			}
			mk.targets[current] = mkTarget{line: i + 1}
		}
	}
	return mk, nil
}

// expand substitutes the Makefile's own variables; those make or sam sets (ARTIFACTS_DIR) stay.
func (mk makefile) expand(s string) string {
	for range 10 {
		next := mkVarUsage.ReplaceAllStringFunc(s, func(v string) string {
			if val, ok := mk.vars[v[2:len(v)-1]]; ok {
				return val
			}
			return v
		})
		if next == s {
			break
		}
		s = next
	}
	return s
}

// folders lists the function folders the recipe builds.
func (tg mkTarget) folders() []string {
	var out []string
	for _, m := range mkFolder.FindAllStringSubmatch(tg.recipe, -1) {
		out = append(out, m[1])
	}
	return out
}

type problems []string

func (ps *problems) add(format string, args ...any) { *ps = append(*ps, fmt.Sprintf(format, args...)) }

func (ps *problems) extend(more []string) { *ps = append(*ps, more...) }

func (ps problems) sorted() []string {
	out := slices.Clone([]string(ps))
	sort.Strings(out)
	return out
}

// --- The checks, proven against fixtures in testdata/ ---

// fixtureRepo is testdata/repo as a file system the cases can edit.
func fixtureRepo(t *testing.T) fstest.MapFS {
	t.Helper()
	repo := fstest.MapFS{}
	root := os.DirFS("testdata/repo")
	err := fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(root, p)
		repo[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func editMakefile(old, new string) func(fstest.MapFS) {
	return func(repo fstest.MapFS) {
		f := repo["Makefile"]
		f.Data = []byte(strings.Replace(string(f.Data), old, new, 1))
	}
}

func TestChecks(t *testing.T) {
	tests := []struct {
		name     string
		template string
		check    func(*template, fs.FS) []string
		edit     func(fstest.MapFS)
		want     []string
	}{
		{name: "valid template and repo", template: "valid.yaml", check: checkAll},
		{name: "function settings", template: "fn-settings.yaml", check: checkFunctions, want: []string{
			"fn-settings.yaml:20: NoBuildMethodFunction: Metadata.BuildMethod is missing, want makefile (sam build then runs the Makefile's build-NoBuildMethodFunction target)",
			`fn-settings.yaml:28: EsbuildFunction: Metadata.BuildMethod is "esbuild", want makefile (sam build then runs the Makefile's build-EsbuildFunction target)`,
			`fn-settings.yaml:35: OldRuntimeFunction: Runtime is "go1.x" (function or Globals), want provided.al2023`,
			`fn-settings.yaml:37: X86Function: Architectures is ["arm64", "x86_64"] (Globals and function lists add up), want [arm64]`,
			`fn-settings.yaml:49: MainHandlerFunction: Handler is "main" (function or Globals), want bootstrap`,
			`fn-settings.yaml:56: OwnFolderFunction: CodeUri is "functions/own", want . (the repository root, where the Makefile's build-OwnFolderFunction target is)`,
		}},
		{name: "log groups", template: "fn-logs.yaml", check: checkFunctions, want: []string{
			"fn-logs.yaml:13: NoLogGroupFunction: LoggingConfig.LogGroup is missing: Lambda would create a log group that keeps logs forever; point it at an AWS::Logs::LogGroup with RetentionInDays",
			`fn-logs.yaml:27: NamedLogGroupFunction: LoggingConfig.LogGroup is "/aws/lambda/mailroom-named", want !Ref to an AWS::Logs::LogGroup in this template, so its retention is managed here`,
			"fn-logs.yaml:35: QueueAsLogGroupFunction: LoggingConfig.LogGroup refers to SomeQueue, which is of type AWS::SQS::Queue; want an AWS::Logs::LogGroup",
			"fn-logs.yaml:48: ForeverLogs: RetentionInDays is missing, so ForeverFunction's logs would be kept forever",
		}},
		{name: "asynchronous invokers", template: "fn-async.yaml", check: checkFunctions, want: []string{
			"fn-async.yaml:24: InboundFunction: invoked asynchronously by SES receipt rule InboundRule, but EventInvokeConfig.DestinationConfig.OnFailure is missing: an event that fails every retry would be lost",
			"fn-async.yaml:41: SweepFunction: invoked asynchronously by event Sweep (ScheduleV2), but EventInvokeConfig.DestinationConfig.OnFailure is missing: an event that fails every retry would be lost",
			`fn-async.yaml:62: BounceFunction: invoked asynchronously by event Bounces (SNS); EventInvokeConfig.DestinationConfig.OnFailure.Type is "Queue", want SQS, SNS, Lambda, EventBridge or S3`,
			"fn-async.yaml:77: EventsFunction: invoked asynchronously by EventBridge rule EventsRule; EventInvokeConfig.DestinationConfig.OnFailure.Destination is missing (required for Type EventBridge)",
			"fn-async.yaml:98: RetentionFunction: invoked asynchronously by events.amazonaws.com (Lambda permission RetentionPermission); EventInvokeConfig.DestinationConfig.OnFailure.Destination refers to MissingQueue, which is not in the template",
		}},
		{name: "environment", template: "env.yaml", check: checkEnv, want: []string{
			"functions/ack/ack.go:10: AckFunction reads ACK_BUCKET (env tag), but neither its Environment.Variables (env.yaml:18) nor the Globals' set it",
			"functions/ack/ack.go:19: AckFunction reads ACK_LANGUAGE (os.Getenv), but neither its Environment.Variables (env.yaml:18) nor the Globals' set it",
			"functions/sweep/sweep.go:13: SweepFunction reads SWEEP_DRY_RUN (os.LookupEnv), but neither its Environment.Variables (env.yaml:21) nor the Globals' set it",
			"functions/sweep/sweep.go:8: SweepFunction reads SWEEP_TABLE (env tag), but neither its Environment.Variables (env.yaml:21) nor the Globals' set it",
		}},
		{name: "policies", template: "policies.yaml", check: checkPolicies, want: []string{
			`policies.yaml:100: ExternalRoleFunction: Role: "arn:aws:iam::123456789012:role/somewhere-else" cannot be checked; use Policies, or an AWS::IAM::Role in this template`,
			`policies.yaml:14: WildcardFunction: Policies[0].Statement[0] (Everything): action "*" is a wildcard; name the actions the function calls`,
			`policies.yaml:18: WildcardFunction: Policies[0].Statement[1]: action "dynamodb:*" is a wildcard; name the actions the function calls`,
			`policies.yaml:18: WildcardFunction: Policies[0].Statement[1]: action "s3:*" is a wildcard; name the actions the function calls`,
			`policies.yaml:18: WildcardFunction: Policies[0].Statement[1]: action "s3:Get*" is a wildcard; name the actions the function calls`,
			"policies.yaml:21: WildcardFunction: Policies[0].Statement[2]: Allow with NotAction grants every other action",
			`policies.yaml:30: StarResourceFunction: Policies[0].Statement[0] (ReadAnyObject): Resource "*" for s3:GetObject; scope it to ARNs (an action AWS cannot scope by resource goes in resourceStarActions in functions/template_test.go, with the reason)`,
			`policies.yaml:38: StarResourceFunction: Policies[0].Statement[2] (MetricsAndMore): Resource "*" for ses:SendRawEmail; scope it to ARNs (an action AWS cannot scope by resource goes in resourceStarActions in functions/template_test.go, with the reason)`,
			"policies.yaml:42: StarResourceFunction: Policies[0].Statement[3]: Allow with NotResource grants every other resource",
			"policies.yaml:50: TemplatesFunction: Policies[0]: SAM policy template DynamoDBCrudPolicy is not on the reviewed list (samPolicyTemplates in functions/template_test.go); broad templates such as DynamoDBCrudPolicy or S3CrudPolicy grant more than one function needs, write a Statement",
			"policies.yaml:52: TemplatesFunction: Policies[1]: SAM policy template S3CrudPolicy is not on the reviewed list (samPolicyTemplates in functions/template_test.go); broad templates such as DynamoDBCrudPolicy or S3CrudPolicy grant more than one function needs, write a Statement",
			"policies.yaml:54: TemplatesFunction: Policies[2]: managed policy AmazonS3FullAccess is not on the reviewed list (managedPolicies in functions/template_test.go); it grants more than one function needs, write a Statement scoped to what the function uses",
			"policies.yaml:55: TemplatesFunction: Policies[3]: managed policy arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess is not on the reviewed list (managedPolicies in functions/template_test.go); it grants more than one function needs, write a Statement scoped to what the function uses",
			"policies.yaml:56: TemplatesFunction: Policies[4]: !Ref SomeParameter cannot be checked; refer to an AWS::IAM::ManagedPolicy in this template or write a Statement",
			`policies.yaml:70: ManagedFunction: Policies[0] (WideManagedPolicy).Statement[0]: action "dynamodb:*" is a wildcard; name the actions the function calls`,
			`policies.yaml:91: WideRole (role of RoleFunction): Policies[0].Statement[0]: Resource "*" for ses:*; scope it to ARNs (an action AWS cannot scope by resource goes in resourceStarActions in functions/template_test.go, with the reason)`,
			`policies.yaml:91: WideRole (role of RoleFunction): Policies[0].Statement[0]: action "ses:*" is a wildcard; name the actions the function calls`,
			"policies.yaml:95: WideRole (role of RoleFunction): ManagedPolicyArns[0]: managed policy arn:aws:iam::aws:policy/AdministratorAccess is not on the reviewed list (managedPolicies in functions/template_test.go); it grants more than one function needs, write a Statement scoped to what the function uses",
		}},
		{name: "storage", template: "storage.yaml", check: checkStorage, want: []string{
			"storage.yaml:10: BareTable: PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled is missing, want true",
			"storage.yaml:10: BareTable: TimeToLiveSpecification is missing; records that must expire would stay",
			"storage.yaml:15: HalfTable: PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled is !Ref RecoveryEnabled, want true",
			`storage.yaml:15: HalfTable: TimeToLiveSpecification needs Enabled: true and an AttributeName (Enabled is "false", AttributeName is "expiresAt")`,
			"storage.yaml:24: QuickTable: AWS::Serverless::SimpleTable is not checked for point-in-time recovery and TTL; use AWS::DynamoDB::Table or extend checkStorage",
			"storage.yaml:27: BareBucket: BucketEncryption.ServerSideEncryptionConfiguration is missing",
			"storage.yaml:27: BareBucket: PublicAccessBlockConfiguration does not set BlockPublicAcls, BlockPublicPolicy, IgnorePublicAcls, RestrictPublicBuckets to true",
			"storage.yaml:27: BareBucket: VersioningConfiguration.Status is missing, want Enabled",
			`storage.yaml:27: BareBucket: no AWS::S3::BucketPolicy denies s3:* when aws:SecureTransport is "false"`,
			"storage.yaml:30: LeakyBucket: PublicAccessBlockConfiguration does not set RestrictPublicBuckets to true",
			`storage.yaml:30: LeakyBucket: ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm is "none", want AES256, aws:kms or aws:kms:dsse`,
			`storage.yaml:30: LeakyBucket: VersioningConfiguration.Status is "Suspended", want Enabled`,
			`storage.yaml:30: LeakyBucket: the bucket policy's aws:SecureTransport deny is incomplete: storage.yaml:50: LeakyBucketPolicy.Statement[0] lacks Action "s3:*", the objects ("<bucket ARN>/*") in Resource`,
		}},
		{name: "missing build target", template: "valid.yaml", check: checkBuild, want: []string{
			"Makefile: SweepFunction has no build-SweepFunction target; sam build (BuildMethod makefile) runs it to build ./functions/<name>/bootstrap",
			"Makefile:13: build-SweeperFunction has no AWS::Serverless::Function SweeperFunction in valid.yaml",
			"functions/sweep/: no function in valid.yaml builds it (no build-<LogicalId> target of a template function builds ./functions/sweep/bootstrap); deploy it or remove it",
		},
			edit: editMakefile("build-SweepFunction:", "build-SweeperFunction:")},
		{name: "target builds a missing folder", template: "valid.yaml", check: checkBuild, want: []string{
			"Makefile:13: build-SweepFunction builds ./functions/sweeper/bootstrap, but functions/sweeper/ does not exist",
			"functions/sweep/: no function in valid.yaml builds it (no build-<LogicalId> target of a template function builds ./functions/sweep/bootstrap); deploy it or remove it",
		},
			edit: editMakefile("./functions/sweep/bootstrap", "./functions/sweeper/bootstrap")},
		{name: "target builds two folders", template: "valid.yaml", check: checkBuild,
			edit: editMakefile("./functions/sweep/bootstrap", "./functions/sweep/bootstrap ./functions/ack/bootstrap")},
		{name: "target builds for amd64", template: "valid.yaml", check: checkBuild, want: []string{
			"Makefile:13: build-SweepFunction does not set GOARCH=arm64 (the function runs on provided.al2023, arm64, as bootstrap)",
			"Makefile:13: build-SweepFunction does not write the binary to $(ARTIFACTS_DIR)/bootstrap (the function runs on provided.al2023, arm64, as bootstrap)",
		},
			edit: editMakefile("build-SweepFunction:\n\t$(LAMBDA_BUILD)", "build-SweepFunction:\n\tGOOS=linux GOARCH=amd64 go build -o bin/bootstrap")},
		{name: "folder without bootstrap", template: "valid.yaml", check: checkBuild, want: []string{
			"Makefile:13: build-SweepFunction builds ./functions/sweep/bootstrap, but functions/sweep/bootstrap/main.go does not exist",
		},
			edit: func(repo fstest.MapFS) { delete(repo, "functions/sweep/bootstrap/main.go") }},
		{name: "folder no function builds", template: "valid.yaml", check: checkBuild, want: []string{
			"functions/stray/: no function in valid.yaml builds it (no build-<LogicalId> target of a template function builds ./functions/stray/bootstrap); deploy it or remove it",
		},
			edit: func(repo fstest.MapFS) {
				repo["functions/stray/stray.go"] = &fstest.MapFile{Data: []byte("package stray\n")}
				repo["functions/testdata/x.json"] = &fstest.MapFile{Data: []byte("{}")}
			}},
		{name: "target without function", template: "valid.yaml", check: checkBuild, want: []string{
			"Makefile:10: build-OldFunction has no AWS::Serverless::Function OldFunction in valid.yaml",
		},
			edit: editMakefile("build-AckFunction:", "build-OldFunction:\n\t$(LAMBDA_BUILD) ./functions/ack/bootstrap\n\nbuild-AckFunction:")},
		{name: "os imported under another name", template: "valid.yaml", check: checkEnv, want: []string{
			"functions/ack/bootstrap/tz.go:5: AckFunction reads ACK_ZONE (os.Getenv), but neither its Environment.Variables (valid.yaml:74) nor the Globals' set it",
		},
			edit: func(repo fstest.MapFS) {
				repo["functions/ack/bootstrap/tz.go"] = &fstest.MapFile{Data: []byte("package main\n\nimport sys \"os\"\n\nvar zone = sys.Getenv(\"ACK_ZONE\")\n")}
			}},
		{name: "envPrefix", template: "valid.yaml", check: checkEnv, want: []string{
			"functions/sweep/nested.go:4: envPrefix is not followed by this check; spell each variable's full name in its env tag",
			"functions/sweep/nested.go:8: SweepFunction reads HOST (env tag), but neither its Environment.Variables (valid.yaml:133) nor the Globals' set it",
		},
			edit: func(repo fstest.MapFS) {
				repo["functions/sweep/nested.go"] = &fstest.MapFile{Data: []byte("package sweep\n\ntype Outer struct {\n\tDB DB `envPrefix:\"DB_\"`\n}\n\ntype DB struct {\n\tHost string `env:\"HOST\"`\n}\n")}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := fixtureRepo(t)
			if tt.edit != nil {
				tt.edit(repo)
			}
			tp := readTemplate(t, os.DirFS("testdata"), tt.template)
			got := tt.check(tp, repo)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %d problems, want %d\ngot:\n%s\nwant:\n%s", len(got), len(tt.want),
					strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestRefs(t *testing.T) {
	tests := []struct {
		yaml string
		want []string
	}{
		{`!Ref Queue`, []string{"Queue"}},
		{`{Ref: AWS::Region}`, nil},
		{`!GetAtt Bucket.Arn`, []string{"Bucket"}},
		{`{"Fn::GetAtt": [Table, StreamArn]}`, []string{"Table"}},
		{`!Sub "${Bucket.Arn}/inbound/* in ${AWS::AccountId}, not ${!Literal}"`, []string{"Bucket"}},
		{`!Sub ["${Rule}-${Local}", {Local: !Ref Topic}]`, []string{"Rule", "Topic"}},
		{`!Join ["", [!GetAtt Bucket.Arn, "/*"]]`, []string{"Bucket"}},
		{`{"Fn::If": [IsProd, !Ref Queue, !Ref AWS::NoValue]}`, []string{"Queue"}},
		{`{a: !Ref One, b: [x, {Ref: Two}]}`, []string{"One", "Two"}},
		{`"${NotASub}"`, nil},
	}
	for _, tt := range tests {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tt.yaml), &doc); err != nil {
			t.Fatalf("%s: %v", tt.yaml, err)
		}
		if got := refs(doc.Content[0]); !slices.Equal(got, tt.want) {
			t.Errorf("refs(%s) = %v, want %v", tt.yaml, got, tt.want)
		}
	}
}
