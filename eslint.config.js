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
  // Imports point one way: bin and src/cli → workers → jobs → the library in src.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/jobs/*', '**/workers/*', '**/cli/*'],
              message: 'src/ is the library: it imports no job, worker or command code',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['jobs/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/workers/*', '**/cli/*'], message: 'a job processor imports the library only' }] },
      ],
    },
  },
  {
    files: ['workers/**/*.ts'],
    ignores: ['workers/generate.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/cli/*'], message: 'the worker process imports no command code' }] },
      ],
    },
  },
  {
    // Tests read arbitrary JSON answers field by field.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
