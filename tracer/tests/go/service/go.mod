module tracer.test/service

go 1.19
