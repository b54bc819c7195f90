module tracer.test/dnsclient

go 1.19
