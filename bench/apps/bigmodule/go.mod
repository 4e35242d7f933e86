module bigmodule

go 1.21
