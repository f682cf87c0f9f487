// Lint rules the codebase keeps: no unused code, no shadowed names, small signatures.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'out/', 'test-artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'no-shadow': 'off',
      '@typescript-eslint/no-shadow': 'error',
      // Beyond four positional parameters a call site no longer says what it passes: use an options object.
      'max-params': ['error', 4],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // Tests read arbitrary JSON answers field by field.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
