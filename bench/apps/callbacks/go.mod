module callbacks

go 1.21
