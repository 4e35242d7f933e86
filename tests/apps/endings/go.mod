module endings

go 1.21
