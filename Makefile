# Shortcuts for those who have make; the scripts need nothing but sh.
.PHONY: setup demo test
setup:
	scripts/setup
demo:
	scripts/demo
test:
	scripts/test
