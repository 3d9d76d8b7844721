# helpdesk — build, test and run targets. `make help` lists them.
GO       ?= go
PKGS     ?= ./...
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS  := -X github.com/helpdesk/helpdesk/cli.Version=$(VERSION) -X github.com/helpdesk/helpdesk/cli.Commit=$(COMMIT)
FUZZTIME ?= 10m
BENCHTIME ?= 1x

.PHONY: help build test lint vet fmt-check demo bench fuzz stress clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/helpdesk
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/helpdesk ./cmd/helpdesk

test: lint ## vet, gofmt and every test with the race detector (Dovecot tests included)
	$(GO) test -race -shuffle=on -timeout 12m $(PKGS)

lint: vet fmt-check ## go vet and gofmt

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

demo: ## run the self-contained demo (in-process IMAP and SMTP on loopback)
	$(GO) run ./cmd/helpdesk demo

bench: ## the benchmark harness (Dovecot + SMTP sink on loopback); writes BENCHMARKS.md. Sizes: BENCH_ARGS='-n=2000 -runs=3 ...'
	$(GO) test -run='^TestHarness$$' -count=1 -v -timeout 60m ./bench -args -harness -out=$(CURDIR)/BENCHMARKS.md $(BENCH_ARGS)

fuzz: ## run every fuzz target for FUZZTIME each (default 10m); minimizing a new input is capped at 5s (a 50 KB seed took the whole minute)
	@for spec in threading:FuzzParse threading:FuzzParseReader threading:FuzzFindTag agent:FuzzParse agent:FuzzVerify quote:FuzzStrip config:FuzzLoad bounce:FuzzParse store:FuzzDecodeMessage store:FuzzMessageRecordText store:FuzzCutCount outbox:FuzzDotAtomAddr; do \
		pkg=$${spec%%:*}; fn=$${spec##*:}; \
		if grep -q "func $$fn(" ./$$pkg/*_test.go 2>/dev/null; then \
			echo "== $$pkg $$fn ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=5s ./$$pkg || exit 1; \
		fi; \
	done

stress: ## SIGKILL the real binary 25 times while it ingests 2,000 mails from Dovecot
	$(GO) test -run 'TestKill' -v -count=1 -timeout 60m ./stress -stress.mails=2000 -stress.kills=25

clean:
	rm -rf bin
