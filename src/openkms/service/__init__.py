"""Operations: one module per API area, one function per operation (snake_case of the AWS name)."""
