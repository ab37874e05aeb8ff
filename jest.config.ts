import type { Config } from 'jest';

const config: Config = {
    preset: 'ts-jest',
    testEnvironment: '@ton/sandbox/jest-environment',
    testPathIgnorePatterns: ['/node_modules/', '/dist/', '/build/', '/target/'],
    // Only the contract specs at the top of tests/ (tests/ also holds the Rust end-to-end crate).
    testMatch: ['<rootDir>/tests/*.spec.ts', '<rootDir>/tests/v2/*.spec.ts'],
    reporters: ['default', ['@ton/sandbox/jest-reporter', {}]],
};

export default config;
