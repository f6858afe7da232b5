.PHONY: demo test setup
demo:  ## set up and run the portal with demo data on http://127.0.0.1:5000/
	scripts/demo.sh
test:  ## set up and run the whole test suite
	scripts/test.sh
setup:
	scripts/setup.sh
